// The viewer's page: plays /v/{asset}/master.m3u8 in the browser's own HLS player. When the
// asset's key is gated, the viewer signs in with an EIP-1193 wallet (window.ethereum): the
// server's nonce, an EIP-4361 message, personal_sign, a playback token, then the stream.
import { hexOfText, signInMessage } from "/console/ethereum.js";

const $ = (selector) => document.querySelector(selector);
// An asset id is letters, digits, '-' and '_' (the store's grammar): nothing else reaches the
// sign-in message or a URL.
const asset = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/.test(location.pathname.split("/")[2] || "") ? location.pathname.split("/")[2] : "";
const base = `/v/${encodeURIComponent(asset)}`;
const video = $("#player");
$("#title").textContent = asset;
document.title = `${asset} · StreamGate`;

const status = (text) => ($("#status").textContent = text);
const refuse = (text) => ($("#refusal").textContent = text);

async function reason(response) {
  try {
    return (await response.json()).error || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

/// The first key a player of this asset would fetch, or null when its segments are not encrypted.
async function firstKeyURL(token) {
  const query = token ? `?token=${encodeURIComponent(token)}` : "";
  const master = await fetch(`${base}/master.m3u8${query}`);
  if (!master.ok) throw new Error(master.status === 404 ? "There is no such stream." : await reason(master));
  const variant = (await master.text()).split("\n").map((l) => l.trim()).find((l) => l && !l.startsWith("#"));
  if (!variant) throw new Error("The stream lists no renditions.");
  const mediaURL = new URL(variant, new URL(`${base}/master.m3u8${query}`, location.href));
  const media = await (await fetch(mediaURL)).text();
  const key = /#EXT-X-KEY:[^\n]*URI="([^"]+)"/.exec(media);
  return key ? new URL(key[1], mediaURL) : null;
}

function play(token) {
  $("#gate").hidden = true;
  refuse("");
  video.src = `${base}/master.m3u8${token ? `?token=${encodeURIComponent(token)}` : ""}`;
  status("Playing.");
  video.play().catch(() => status("Press play to start."));
}

async function signIn() {
  refuse("");
  const wallet = window.ethereum;
  if (!wallet) {
    refuse("No Ethereum wallet was found in this browser: install one (a browser extension or a wallet's own browser) and reload.");
    return;
  }
  $("#connect").disabled = true;
  try {
    status("Asking your wallet for your address…");
    const [address] = await wallet.request({ method: "eth_requestAccounts" });
    const chainID = parseInt(await wallet.request({ method: "eth_chainId" }), 16);
    const nonceAnswer = await fetch("/v1/auth/nonce", { method: "POST" });
    if (!nonceAnswer.ok) throw new Error(await reason(nonceAnswer));
    const { nonce } = await nonceAnswer.json();
    const message = signInMessage({ address, chainID, nonce, statement: `Watch ${asset} on StreamGate.`, uri: `${location.origin}/watch/${encodeURIComponent(asset)}` });
    status("Sign the message in your wallet…");
    const signature = await wallet.request({ method: "personal_sign", params: [hexOfText(message), address] });
    const signed = await fetch("/v1/auth/siwe", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ message, signature }) });
    if (!signed.ok) throw new Error(`Sign-in refused: ${await reason(signed)}`);
    const { token } = await signed.json();
    status("Checking what your wallet owns…");
    const key = await fetch(await firstKeyURL(token));
    if (key.status === 403) throw new Error(`This wallet cannot watch this stream: ${await reason(key)}`);
    if (!key.ok) throw new Error(await reason(key));
    sessionStorage.setItem(`streamgate-token:${asset}`, token);
    play(token);
  } catch (error) {
    status("");
    refuse(error.message || String(error));
  } finally {
    $("#connect").disabled = false;
  }
}

$("#connect").addEventListener("click", signIn);
video.addEventListener("error", () => refuse(`The player stopped: ${video.error?.message || "the stream could not be played"}.`));

(async () => {
  if (!asset) {
    refuse("This address names no stream.");
    return;
  }
  try {
    const keyURL = await firstKeyURL(null);
    if (!keyURL) return play(null);
    const saved = sessionStorage.getItem(`streamgate-token:${asset}`);
    const key = await fetch(saved ? `${keyURL}${keyURL.search ? "&" : "?"}token=${encodeURIComponent(saved)}` : keyURL);
    if (key.ok) return play(saved);
    if (key.status === 401 || key.status === 403) {
      sessionStorage.removeItem(`streamgate-token:${asset}`);
      $("#gate").hidden = false;
      status("");
      return;
    }
    refuse(await reason(key));
  } catch (error) {
    refuse(error.message);
  }
})();
