// Screenshots of the Dagster UI for docs/ (not run in CI): the asset graph with every group expanded, champion_model
// materialised, and the segmentation model's checks with their severity.
//
//   node scripts/screenshots.mjs PORT OUT_DIR
//
// Needs `npm install playwright-core` (any folder on NODE_PATH) and Debian's chromium; scripts/screenshot_asset_graph.sh
// starts the webserver and calls this with its port.
import { chromium } from "playwright-core";

const [port, out] = process.argv.slice(2);
const base = `http://127.0.0.1:${port}`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"],
});
const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });

async function shot(path, file, prepare) {
  await page.goto(base + path, { waitUntil: "networkidle" });
  await page.waitForTimeout(4000);
  if (prepare) await prepare();
  await page.waitForTimeout(2500);
  await page.screenshot({ path: `${out}/${file}` });
  console.log(`wrote ${out}/${file} (${path})`);
}

async function clickText(pattern) {
  const el = page.getByText(pattern).first();
  if (await el.count()) { await el.click(); return true; }
  return false;
}

await shot("/asset-groups", "asset_graph.png", async () => {
  // the graph opens with its groups collapsed: expand them all (the toolbar button, else each group's header)
  if (!(await clickText(/expand all/i))) {
    const groups = page.locator("[data-testid*='group'] svg, [aria-label*='expand' i]");
    for (let i = 0; i < (await groups.count()); i++) await groups.nth(i).click().catch(() => {});
  }
  await page.waitForTimeout(2000);
  await clickText(/fit to screen|zoom to fit/i).catch(() => {});
});
await shot("/assets/champion_model", "champion_model.png");
await shot("/assets/segmentation_model?view=checks", "model_checks.png");
await browser.close();
