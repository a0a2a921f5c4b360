import { test as base } from "@playwright/test";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { withPace } from "../../pace.js";

// The fixture: every test has its own link, and pace to change it.
export const test = withPace(base);

// slow4G is what slow-4g's link carries of payload, in bytes per second:
// 1.6 Mbit/s, 1448 bytes of every 1500-byte packet.
export const slow4G = ((1.6e6 / 8) * 1448) / 1500;

// meet waits until count tests have called it with group, so that tests in
// other workers run their downloads at the same time.
export async function meet(testInfo, group, count) {
  const dir = join(testInfo.project.outputDir, ".meet", group);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${testInfo.testId}-${testInfo.retry}`), "");
  const deadline = Date.now() + 30_000;
  while (readdirSync(dir).length < count) {
    if (Date.now() > deadline) throw new Error(`${group}: the other tests did not come within 30 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// rate is a download's bytes per second from one second after its first
// byte to its last, once its connection is out of slow start.
export function rate(result) {
  const from = result.reads[0].t + 1000;
  let at = result.reads[0].t;
  let bytes = 0;
  for (const r of result.reads) {
    if (r.t <= from) at = r.t;
    else bytes += r.n;
  }
  return (bytes / (result.reads.at(-1).t - at)) * 1000;
}

// percent writes got against want as a signed percentage.
export function percent(got, want) {
  const p = ((got / want - 1) * 100).toFixed(1);
  return got >= want ? `+${p}%` : `${p}%`;
}
