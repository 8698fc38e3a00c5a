// Takes the README's pictures: the demo (docs/demo.png): the built demo
// served by the real server, a few lines in the cart, the WebSocket killed
// once so the log shows it lost and restored, a few seconds of RTT on the
// chart (twenty seconds in all); then the server's health page
// (docs/admin.png, admin_screenshot.mjs: about forty seconds more). Run by
// `make screenshot` after a build.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launchBrowser, startServer } from "../../js/test/harness.mjs";
import { WWW, add, assertBuilt, ready, untilPanel } from "../test/demo.mjs";
import { adminScreenshot } from "./admin_screenshot.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const OUT = path.join(ROOT, "docs/demo.png");
const ADMIN_OUT = path.join(ROOT, "docs/admin.png");
const ADMIN_TOKEN = "screenshot-admin-token";

assertBuilt();
const server = await startServer(["--www", WWW], { env: { SESSILE_ADMIN_TOKEN: ADMIN_TOKEN } });
const browser = await launchBrowser();
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 960 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  await page.goto(server.url);
  await ready(page);
  for (const sku of ["SK-101", "SK-102", "SK-102", "SK-105", "SK-107"]) await add(page, sku);
  await untilPanel(page, (p) => p["d-compressed"].startsWith("yes"), "a compressed write");
  await page.waitForTimeout(3_000);
  await page.click("#kill");
  await untilPanel(page, (p) => p.connection.startsWith("restored"), "restored");
  await untilPanel(page, (p) => p["d-rtt"] !== "–", "an RTT", 20_000);
  await page.waitForTimeout(12_000);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: OUT });
  console.log(`wrote ${path.relative(ROOT, OUT)}`);
  // The demo's tab stays open: its WebSocket is on the health page's chart.
  await adminScreenshot(server, browser, ADMIN_TOKEN, ADMIN_OUT);
  console.log(`wrote ${path.relative(ROOT, ADMIN_OUT)}`);
} finally {
  await browser.close();
  await server.stop();
}
