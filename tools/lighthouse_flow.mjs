// Lighthouse 12's user flow on chatd's page: the page used once (a nickname, three
// rooms), opened again with that session remembered (a navigation), then scored
// in use (a snapshot). Needs npm's lighthouse@12.2.3 and Debian's chromium; see
// the README (In a browser) for the commands and the figures.
//   node tools/lighthouse_flow.mjs http://127.0.0.1:8080/ [mobile|desktop] [report.html]
import fs from "node:fs";
import puppeteer from "puppeteer-core";
import { startFlow, desktopConfig } from "lighthouse";

const url = process.argv[2];
const preset = process.argv[3] || "mobile";
const browser = await puppeteer.launch({
  executablePath: "/usr/bin/chromium",
  headless: "new",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const page = await browser.newPage();
const config = preset === "desktop" ? desktopConfig : undefined;
const flow = await startFlow(page, {
  config,
  flags: { onlyCategories: ["performance", "accessibility", "best-practices"] },
});
// Use the page once: a nickname, three rooms; the session is remembered.
await page.goto(url);
await page.type("#nick", `lh${preset.slice(0, 3)}`);
await page.keyboard.press("Enter");
await page.waitForSelector("#chat:not([hidden])");
for (const room of ["#dev", "#ops", "#games"]) {
  await page.type("#say", `/join ${room}`);
  await page.keyboard.press("Enter");
  await page.waitForFunction((r) => document.getElementById("title").textContent === r, {}, room);
  await page.type("#say", `hello ${room}, see https://example.org/`);
  await page.keyboard.press("Enter");
}
await page.waitForFunction(() => document.querySelector("#member-list .mark"));
// Then: open it again, as after a reload, and score that load and the page in use.
await flow.navigate(url, { name: "remembered session", disableStorageReset: true });
await page.waitForFunction(() => document.getElementById("title").textContent === "#games");
await flow.snapshot({ name: "in use" });
const result = await flow.createFlowResult();
const scores = result.steps.map((step) => [
  step.name,
  Object.fromEntries(Object.entries(step.lhr.categories).map(([k, v]) => [k, v.score])),
]);
console.log(JSON.stringify(scores));
if (process.argv[4]) fs.writeFileSync(process.argv[4], await flow.generateReport());
await browser.close();
for (const step of result.steps) {
  const failing = Object.values(step.lhr.audits)
    .filter((a) => a.score !== null && a.score < 1 && a.scoreDisplayMode !== "informative" && a.scoreDisplayMode !== "manual")
    .map((a) => [a.id, a.score, a.displayValue || ""]);
  console.log(step.name, JSON.stringify(failing));
  const perf = step.lhr.categories.performance;
  console.log(perf.score, perf.auditRefs.filter((r) => r.weight > 0).map((r) => r.id).join(","));
}
