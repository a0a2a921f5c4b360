// Two tests download at once, in two workers, each on its own link: each
// gets slow-4g's whole rate. With one link for both (the client's address,
// 127.0.0.1, as without the fixture's cookie), each would get half.
import { expect } from "@playwright/test";
import { downloadSHA256, downloadSize } from "../global-setup.js";
import { meet, percent, rate, slow4G, test } from "./helpers.js";

test.describe.configure({ mode: "parallel" });

for (const name of ["first", "second"]) {
  test(`the ${name} of two downloads at once gets its link's whole rate`, async ({ page }, testInfo) => {
    await page.goto("/");
    await meet(testInfo, "two-downloads", 2);
    const result = await page.evaluate(() => window.download("/download.bin"));
    const got = rate(result);
    console.log(`the ${name} download: ${result.bytes} bytes, ${got.toFixed(0)} B/s from its first second on, ${percent(got, slow4G)} of slow-4g's ${slow4G.toFixed(0)}`);
    expect(result.bytes).toBe(downloadSize);
    expect(result.sha256).toBe(downloadSHA256);
    expect(got).toBeGreaterThan(slow4G * 0.9);
    expect(got).toBeLessThan(slow4G * 1.1);
  });
}
