// A tus 1.0 client for the console's uploads (creation, PATCH in chunks, resume from the server's
// offset). An upload's URL is remembered by the file's name, size and date, so a dropped
// connection, a reload or a closed tab continues where the server says it stopped.

const CHUNK = 8 * 1024 * 1024;
const RETRIES = [1000, 2000, 4000, 8000, 15000];

function encodeMetadata(fields) {
  return Object.entries(fields)
    .filter(([, value]) => value !== undefined && value !== "")
    .map(([key, value]) => `${key} ${btoa(String.fromCharCode(...new TextEncoder().encode(String(value))))}`)
    .join(",");
}

function fingerprint(file, fields) {
  return `streamgate-tus:${file.name}:${file.size}:${file.lastModified}:${fields.profile || ""}:${fields.asset_id || ""}`;
}

async function answerError(response) {
  try {
    const body = await response.json();
    return body.error || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

/// Uploads `file`; `onProgress(sent, total)` as it goes. `headers()` gives the session's CSRF
/// header for each request. Resolves with the job id the server assigned.
export async function upload(file, fields, { headers, onProgress, onRetry, signal }) {
  const key = fingerprint(file, fields);
  const base = { "Tus-Resumable": "1.0.0" };
  let saved = null;
  try { saved = JSON.parse(localStorage.getItem(key) || "null"); } catch { saved = null; }
  let url = saved && saved.url;
  let jobID = saved && saved.job;
  let offset = 0;

  if (url) {
    const head = await fetch(url, { method: "HEAD", headers: { ...base, ...headers() }, signal });
    if (head.ok) {
      offset = Number(head.headers.get("Upload-Offset") || "0");
      jobID = head.headers.get("StreamGate-Job-Id") || jobID;
    } else if (head.status === 401 || head.status === 403) {
      throw new Error("sign in again to resume this upload");
    } else {
      localStorage.removeItem(key);
      url = null;
    }
  }
  if (!url) {
    const created = await fetch("/v1/uploads", {
      method: "POST", signal,
      headers: { ...base, ...headers(), "Upload-Length": String(file.size), "Upload-Metadata": encodeMetadata({ filename: file.name, ...fields }) },
    });
    if (created.status !== 201) throw new Error(await answerError(created));
    url = new URL(created.headers.get("Location"), location.href).pathname;
    jobID = created.headers.get("StreamGate-Job-Id") || null;
    localStorage.setItem(key, JSON.stringify({ url, job: jobID }));
  }
  onProgress(offset, file.size);

  let failures = 0;
  while (offset < file.size) {
    const chunk = file.slice(offset, Math.min(file.size, offset + CHUNK));
    try {
      const sent = await fetch(url, {
        method: "PATCH", signal, body: chunk,
        headers: { ...base, ...headers(), "Content-Type": "application/offset+octet-stream", "Upload-Offset": String(offset) },
      });
      // 409: the offset moved; 423: the server still holds the dropped request's lock; 429, 5xx:
      // later. All are retried from the offset HEAD reports.
      if ([409, 423, 429].includes(sent.status) || sent.status >= 500) throw new Error(await answerError(sent));
      // Signed out: the upload stays resumable once the console is signed in again.
      if (sent.status === 401 || sent.status === 403) throw Object.assign(new Error(`sign in again to resume: ${await answerError(sent)}`), { final: true });
      if (sent.status !== 204) {
        localStorage.removeItem(key);
        throw Object.assign(new Error(await answerError(sent)), { final: true });
      }
      offset = Number(sent.headers.get("Upload-Offset"));
      jobID = sent.headers.get("StreamGate-Job-Id") || jobID;
      failures = 0;
      onProgress(offset, file.size);
    } catch (error) {
      if (error.final || signal?.aborted || failures >= RETRIES.length) throw error;
      // The connection dropped or the server stumbled: wait, ask where it stopped, go on from there.
      onRetry?.(error, RETRIES[failures]);
      await new Promise((resolve) => setTimeout(resolve, RETRIES[failures++]));
      const head = await fetch(url, { method: "HEAD", headers: { ...base, ...headers() }, signal }).catch(() => null);
      if (head && head.ok) offset = Number(head.headers.get("Upload-Offset") || offset);
    }
  }
  localStorage.removeItem(key);
  return jobID;
}
