// The demo page: builds a sample checkout state, saves it through sessile
// (encode + localStorage), loads it back, and asks the server to verify the
// same bytes. Every figure shown comes from the library or the server.
import { loadSessile, SessileError } from "/js/index.js";

const COMPRESS_ABOVE = 10 * 1024;
const FIXED_CART_TIME = Date.UTC(2026, 10, 23);
const $ = (sel) => document.querySelector(sel);

function log(text) {
  const li = document.createElement("li");
  li.textContent = `${new Date().toISOString().slice(11, 23)} ${text}`;
  $("#log").append(li);
}

function sampleCart() {
  return { step: "cart", items: [{ sku: "TEE-001", name: "Organic tee", qty: 2, price: 24.5 }] };
}

function sampleCheckout(itemCount) {
  const items = [];
  for (let i = 0; i < itemCount; i++) {
    items.push({
      sku: `SKU-${String(i).padStart(5, "0")}`,
      name: `Product ${i} (${["red", "blue", "green"][i % 3]}, size ${["S", "M", "L", "XL"][i % 4]})`,
      qty: (i % 3) + 1,
      price: Math.round((9.99 + (i % 40) * 1.25) * 100) / 100,
      upsell: i % 10 === 0,
    });
  }
  return {
    step: "checkout",
    email: "shopper@example.com",
    address: { line1: "1 Market Street", city: "Springfield", postcode: "12345", country: "US" },
    items,
    amount: items.reduce((sum, it) => sum + it.qty * it.price, 0).toFixed(2),
  };
}

async function verifyOnServer(bytes) {
  const res = await fetch("/v1/snapshots/verify", { method: "POST", body: bytes });
  return res.json();
}

function show(card, rows) {
  const dl = $(`#${card} dl`);
  dl.replaceChildren();
  for (const [label, value, testid, cls] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    dd.dataset.testid = `${card}-${testid}`;
    if (cls) dd.className = cls;
    dl.append(dt, dd);
  }
}

// Saves `state` (encode + localStorage), loads it back, and has the server
// verify the same bytes. `modifiedAt` is kept across reloads for an unchanged
// state, so its checksum stays the same.
async function roundTrip(sessile, card, key, state, version, modifiedAt) {
  const options = { stateVersion: version, schemaVersion: 1, modifiedAt };
  const saved = sessile.saveSnapshot(key, state, options);
  const loaded = sessile.loadSnapshot(key);
  const same = JSON.stringify(loaded.state) === JSON.stringify(state) && loaded.checksum === saved.checksum;
  const bytes = sessile.encodeSnapshot(state, options);
  const server = await verifyOnServer(bytes);
  const serverOk = server.ok && server.checksum === saved.checksum;
  show(card, [
    ["state version", loaded.stateVersion, "version"],
    ["checksum (CRC-32)", loaded.checksum, "checksum"],
    ["raw JSON bytes", loaded.rawBytes, "raw"],
    ["stored bytes", loaded.storedBytes, "stored"],
    ["compressed", loaded.compressed ? `yes (above ${COMPRESS_ABOVE} B)` : "no", "compressed"],
    ["round trip", same ? "identical" : "DIFFERENT", "roundtrip", same ? "ok" : "bad"],
    ["server verify", serverOk ? `ok (${server.checksum})` : `failed: ${server.code ?? server.checksum}`, "server", serverOk ? "ok" : "bad"],
  ]);
  log(`${card}: v${loaded.stateVersion}, ${loaded.rawBytes} B raw -> ${loaded.storedBytes} B stored, checksum ${loaded.checksum}`);
  return loaded;
}

async function main() {
  const sessile = await loadSessile();
  $("#status").textContent = "WebAssembly module loaded.";

  const restored = (() => {
    try {
      return sessile.loadSnapshot("demo-checkout");
    } catch (e) {
      if (e instanceof SessileError) log(`stored checkout unreadable: ${e.code} (${e.message}); starting fresh`);
      return undefined;
    }
  })();
  let version = restored ? restored.stateVersion : 1;
  let checkout = restored ? restored.state : sampleCheckout(120);
  const modifiedAt = restored ? restored.modifiedAt : Date.now();
  if (restored) log(`restored the checkout from localStorage: version ${version}, ${checkout.items.length} items`);

  await roundTrip(sessile, "small", "demo-cart", sampleCart(), 1, FIXED_CART_TIME);
  await roundTrip(sessile, "large", "demo-checkout", checkout, version, modifiedAt);

  $("#add-item").addEventListener("click", async () => {
    checkout = sampleCheckout(checkout.items.length + 1);
    version += 1;
    await roundTrip(sessile, "large", "demo-checkout", checkout, version, Date.now());
  });
  $("#reload").addEventListener("click", () => location.reload());
  $("#status").textContent = "Round trip done.";
  document.body.dataset.ready = "true";
}

main().catch((e) => {
  $("#status").textContent = `Error: ${e.code ?? ""} ${e.message}`;
  $("#status").className = "bad";
  document.body.dataset.ready = "error";
  console.error(e);
});
