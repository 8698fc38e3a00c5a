// The save / restore a page writes by hand today, which sessile is measured
// against: JSON.stringify + TextEncoder + fflate deflateSync + a table CRC-32
// (over the stored deflate bytes, as sessile's covers its stored bytes), kept
// as base64 in localStorage or as a Uint8Array in IndexedDB via idb-keyval.
// Stored layout: 4-byte little-endian CRC-32, then the raw deflate stream.
import { deflateSync, inflateSync } from "./vendor/fflate.js";
import { get, set } from "./vendor/idb-keyval.js";

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE), one table lookup a byte. */
export function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Chromium's built-in base64 when present (Uint8Array.prototype.toBase64), else btoa. */
export const NATIVE_BASE64 = typeof Uint8Array.prototype.toBase64 === "function";
export const toBase64 = NATIVE_BASE64
  ? (u8) => u8.toBase64()
  : (u8) => {
      let s = "";
      for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
      return btoa(s);
    };
export const fromBase64 = NATIVE_BASE64
  ? (text) => Uint8Array.fromBase64(text)
  : (text) => Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));

const te = new TextEncoder();
const td = new TextDecoder();

/** State to stored bytes: CRC-32 of the deflate stream, then the stream. */
export function encode(state, level) {
  const z = deflateSync(te.encode(JSON.stringify(state)), { level });
  const out = new Uint8Array(z.length + 4);
  new DataView(out.buffer).setUint32(0, crc32(z), true);
  out.set(z, 4);
  return out;
}

/** Stored bytes to state; throws on a checksum mismatch. */
export function decode(bytes) {
  const z = bytes.subarray(4);
  const want = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  if (crc32(z) !== want) throw new Error("js stack: CRC-32 mismatch");
  return JSON.parse(td.decode(inflateSync(z)));
}

export const saveLocal = (key, state, level) => localStorage.setItem(key, toBase64(encode(state, level)));
export function loadLocal(key) {
  const text = localStorage.getItem(key);
  return text === null ? undefined : decode(fromBase64(text));
}
export const saveIdb = (key, state, level) => set(key, encode(state, level));
export const loadIdbBytes = (key) => get(key);
