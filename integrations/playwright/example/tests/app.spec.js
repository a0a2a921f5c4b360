// The app's own error handling, tested by going offline while its fetch is
// in flight: it gives up after 3 s and says so; back online, it loads.
import { expect } from "@playwright/test";
import { test } from "./helpers.js";

test("the app says so when the network goes while it loads", async ({ page, pace }) => {
  await page.goto("/");
  await page.getByRole("button", { name: "Load the news" }).click();
  await expect(page.getByText("40 stories")).toBeVisible();

  await page.getByRole("button", { name: "Load the news" }).click();
  await pace.offline();
  await expect(page.getByText("Could not load the news: the network timed out")).toBeVisible({ timeout: 10_000 });

  await pace.online();
  await page.getByRole("button", { name: "Load the news" }).click();
  await expect(page.getByText("40 stories")).toBeVisible();
  await expect(page.getByRole("listitem")).toHaveCount(40);
});

test("a test can set its link before the page loads", async ({ page, pace }) => {
  await pace.set({ preset: "3g" });
  const state = await pace.state();
  expect(state.changed).toEqual({ preset: "3g" });
  const started = Date.now();
  await page.goto("/");
  // 3g: a handshake and a request of 400 ms each, then the page's script's
  // request; slow-4g's would take under half as long.
  console.log(`the page loaded through 3g in ${Date.now() - started} ms`);
  expect(Date.now() - started).toBeGreaterThan(1200);
  const after = await pace.state();
  expect(after.bytes_down).toBeGreaterThan(0);
});
