// Writes the download the specs fetch: 1,000,000 bytes that are the same
// on every run, so that a spec can check that every byte came.
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";

export const downloadSize = 1_000_000;

export function downloadBytes() {
  const bytes = Buffer.alloc(downloadSize);
  let x = 2463534242;
  for (let i = 0; i < bytes.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

export const downloadSHA256 = createHash("sha256").update(downloadBytes()).digest("hex");

export default function globalSetup() {
  writeFileSync(new URL("./site/download.bin", import.meta.url), downloadBytes());
}
