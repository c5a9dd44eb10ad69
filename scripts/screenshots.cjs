// Screenshots of the Dagster UI for docs/ (not run in CI): the asset graph with its groups, champion_model
// materialised, and the segmentation model's checks with their severity.
//
//   NODE_PATH=<folder with node_modules/playwright-core> node scripts/screenshots.cjs PORT OUT_DIR
//
// Needs `npm install playwright-core` (its folder on NODE_PATH) and Debian's chromium;
// scripts/screenshot_asset_graph.sh --docs DIR starts the webserver and calls this with its port.
const { chromium } = require("playwright-core");

(async () => {
const [port, out] = process.argv.slice(2);
const base = `http://127.0.0.1:${port}`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"],
});
const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });

async function shot(path, file) {
  await page.goto(base + path, { waitUntil: "networkidle" });
  await page.waitForTimeout(5000);
  await page.screenshot({ path: `${out}/${file}` });
  console.log(`wrote ${out}/${file} (${path})`);
}

// every group of the pipeline in data-flow order (groups are boxes here; a click on one opens its assets)
await shot("/asset-groups", "asset_graph.png");
await shot("/assets/champion_model", "champion_model.png");
await shot("/assets/segmentation_model?view=checks", "model_checks.png");
await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
