/**
 * Bytes as base64 text (RFC 4648, padded) for storage that only holds
 * strings: the browser's own `Uint8Array.prototype.toBase64` /
 * `Uint8Array.fromBase64` where present (Chromium 140+, Firefox 133+,
 * Safari 18.2+), `btoa` / `atob` otherwise. Text that is not base64 is
 * CORRUPT_PAYLOAD.
 */
import { fail } from "./errors.js";

type Native = { fromBase64?: (text: string) => Uint8Array };
type NativeBytes = Uint8Array & { toBase64?: () => string };

export function toBase64(bytes: Uint8Array): string {
  const native = (bytes as NativeBytes).toBase64;
  if (native) return native.call(bytes);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function fromBase64(text: string): Uint8Array {
  try {
    const native = (Uint8Array as Native).fromBase64;
    if (native) return native(text);
    const binary = atob(text);
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  } catch {
    throw fail("CORRUPT_PAYLOAD", "snapshot payload is corrupt: stored text is not base64");
  }
}
