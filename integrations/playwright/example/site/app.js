// The example's app: it loads the news with fetch, and says so when the
// network lets it down, as an app under test should.
const status = document.getElementById("status");
const list = document.getElementById("news");

// loadNews gives up after 3 seconds, and shows why.
async function loadNews() {
  status.textContent = "Loading…";
  list.replaceChildren();
  try {
    const res = await fetch("/news.json", { signal: AbortSignal.timeout(3000), cache: "no-store" });
    const news = await res.json();
    for (const item of news.items) {
      const li = document.createElement("li");
      li.textContent = item;
      list.append(li);
    }
    status.textContent = `${news.items.length} stories`;
  } catch (err) {
    status.textContent = err.name === "TimeoutError"
      ? "Could not load the news: the network timed out. Try again."
      : `Could not load the news: ${err.message}`;
  }
}
document.getElementById("load").addEventListener("click", loadNews);

// download reads url as a page would, timing every read, for the specs:
// the bytes, the reads ({t: ms since the request, n: bytes}) and the
// body's SHA-256 in hex.
window.download = async (url) => {
  const start = performance.now();
  const res = await fetch(url, { cache: "no-store" });
  const reader = res.body.getReader();
  const chunks = [];
  const reads = [];
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    bytes += value.length;
    reads.push({ t: performance.now() - start, n: value.length });
    window.downloaded = bytes;
  }
  const body = new Uint8Array(bytes);
  let at = 0;
  for (const c of chunks) {
    body.set(c, at);
    at += c.length;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  const sha256 = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  return { bytes, reads, sha256 };
};
