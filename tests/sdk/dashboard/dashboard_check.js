// Drives polyquery's jobs dashboard in Debian's headless Chromium, as a person would.
//
// Usage: node dashboard_check.js BASE_URL RUNNING_JOB_UUID SCREENSHOT.png
//
// Loads /_polyquery/ui, waits until it lists jobs started through each of the four wires, saves a
// screenshot, opens the running job, cancels it with the button and waits to see it cancelled.
// Exits non-zero with a message on the first mismatch; prints "dashboard: ok" otherwise.
"use strict";

const puppeteer = require("puppeteer-core");

const [base, running, screenshot] = process.argv.slice(2);
const WIRES = ["luminesce", "asterixdb", "looker", "kylin"];

async function main() {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // Root in a container: Chromium's sandbox needs user namespaces it may not have.
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    await page.goto(base + "/_polyquery/ui", { waitUntil: "load" });
    await page.waitForFunction(
      (wires) => {
        const seen = [...document.querySelectorAll("#jobs tbody tr td:first-child")].map((td) => td.textContent);
        return wires.every((w) => seen.includes(w));
      },
      { timeout: 20000 },
      WIRES,
    );
    await page.screenshot({ path: screenshot, fullPage: true });
    await page.click(`tr.job[data-id="${running}"]`);
    await page.waitForFunction(
      (id) => document.getElementById("j-id").textContent === id
        && ["queued", "running"].includes(document.getElementById("j-state").textContent),
      { timeout: 20000 },
      running,
    );
    await page.click("#j-cancel");
    await page.waitForFunction(() => document.getElementById("j-state").textContent === "cancelled", { timeout: 20000 });
    console.log("dashboard: ok");
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error("MISMATCH: " + (e && e.stack ? e.stack : e));
  process.exit(1);
});
