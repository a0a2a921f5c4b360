// Two tests download at once. One goes offline for 2 s in the middle of its
// download: its bytes stop, and come back whole once it is online again.
// The other's download goes on at slow-4g's rate all along.
import { expect } from "@playwright/test";
import { downloadSHA256, downloadSize } from "../global-setup.js";
import { meet, percent, rate, slow4G, test } from "./helpers.js";

test.describe.configure({ mode: "parallel" });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("going offline stalls this test's download, which resumes whole", async ({ page, pace }, testInfo) => {
  await page.goto("/");
  await meet(testInfo, "offline", 2);
  const download = page.evaluate(() => window.download("/download.bin"));
  await sleep(1500);
  await pace.offline();
  // Within a round trip of slow-4g (150 ms), nothing more comes.
  await sleep(300);
  const atOffline = await page.evaluate(() => window.downloaded ?? 0);
  await sleep(2000);
  const atOnline = await page.evaluate(() => window.downloaded ?? 0);
  await pace.online();
  const result = await download;
  console.log(`offline for 2 s after ${atOffline} bytes: ${atOnline - atOffline} bytes came meanwhile; then all ${result.bytes}`);
  expect(atOffline).toBeGreaterThan(0);
  expect(atOnline - atOffline).toBe(0);
  expect(result.bytes).toBe(downloadSize);
  expect(result.sha256).toBe(downloadSHA256);
});

test("another test going offline leaves this test's download alone", async ({ page, pace }, testInfo) => {
  await page.goto("/");
  await meet(testInfo, "offline", 2);
  const download = page.evaluate(() => window.download("/download.bin"));
  // While the other test is offline, its link says so, and this one's
  // does not.
  await sleep(2500);
  const network = await pace.network();
  const mine = network.links.find((l) => l.key === pace.key);
  const offline = network.links.filter((l) => l.options.preset === "offline");
  const result = await download;
  const got = rate(result);
  console.log(`beside ${offline.length} offline link(s): ${got.toFixed(0)} B/s from the first second on, ${percent(got, slow4G)} of slow-4g's`);
  expect(offline.length).toBe(1);
  expect(mine.options.preset).toBe("slow-4g");
  expect(result.sha256).toBe(downloadSHA256);
  expect(got).toBeGreaterThan(slow4G * 0.9);
  expect(got).toBeLessThan(slow4G * 1.1);
});
