// The API keys page end to end in Debian's chromium (playwright-core)
// against `make run`'s stack: a user (registered through the API) logs in,
// opens "API keys" from the navigation, creates a key that expires in 30
// days, sees its secret once (copied with the button, checked against the
// clipboard) with the warning, dismisses it; the list shows the key by its
// prefix only and the page no longer holds the secret; the key is revoked
// after the confirmation. axe-core finds nothing serious or critical at
// 1280 and 375 px; screenshots in e2e/artifacts/. Run: `make e2e`
// (deploy/local/e2e.sh, after admin.mjs), or `node e2e/api-keys.mjs` with a
// stack up (BASE_URL, CHROMIUM override the defaults).
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const axeSource = await readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const here = path.dirname(fileURLToPath(import.meta.url));
const BASE = process.env.BASE_URL ?? "http://127.0.0.1:8080";
const ARTIFACTS = path.join(here, "artifacts");
const email = `e2e-keys-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
const password = "correct horse battery staple";

const a11y = [];

/** axe-core's serious and critical findings on the page as it is. */
async function audit(page, name) {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource);
  const found = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
  for (const f of found) a11y.push(`${name}: ${f}`);
}

/** Screenshots and axe-core at both widths, nothing wider than the screen. */
async function shoot(page, name) {
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: 800 });
    const height = await page.evaluate(() => {
      const main = document.querySelector("#root > main");
      return main ? Math.ceil(main.getBoundingClientRect().top + main.scrollHeight) : 800;
    });
    await page.setViewportSize({ width, height: Math.max(800, height) });
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    if (wide > width) throw new Error(`${name} is ${wide} px wide at ${width} px`);
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}-${width}.png`), fullPage: true });
    await audit(page, `${name}@${width}`);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

const started = Date.now();
await mkdir(ARTIFACTS, { recursive: true });
const registered = await fetch(`${BASE}/api/v1/auth/register`, {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ email, password, name: "E2E Keys" }),
});
if (registered.status !== 201) throw new Error(`register answered ${registered.status}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
const page = await context.newPage();
const problems = [];
page.on("console", (msg) => {
  if (msg.type() === "error") problems.push(msg.text());
});
page.on("pageerror", (e) => problems.push(String(e)));
page.on("response", (r) => {
  if (r.status() >= 400) problems.push(`${r.status()} ${r.request().method()} ${r.url()}`);
});
try {
  await page.goto(`${BASE}/login`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(/\/chat/);

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "API keys" }).click();
  await page.getByRole("heading", { name: "API keys", level: 1 }).waitFor();
  await page.getByText("You have no API keys.").waitFor();
  await shoot(page, "keys-01-empty");

  await page.getByLabel("Name").fill("e2e laptop");
  await page.getByLabel("Expires").selectOption("30");
  await page.getByRole("button", { name: "Create key" }).click();
  const secretBox = page.getByLabel("The new API key");
  await secretBox.waitFor();
  const secret = await secretBox.inputValue();
  if (!/^sk-aichat-[A-Za-z0-9_-]{43}$/.test(secret)) throw new Error(`the new key looks wrong: ${secret.slice(0, 14)}…`);
  await page.getByText("shown only this once").waitFor();
  await page.getByRole("button", { name: "Copy" }).click();
  await page.getByText("Copied.").waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  if (copied !== secret) throw new Error("the clipboard does not hold the new key");
  await shoot(page, "keys-02-secret-once");

  await page.getByRole("button", { name: "I have saved it" }).click();
  const item = page.getByRole("listitem").filter({ hasText: "e2e laptop" });
  await item.waitFor();
  if (!(await item.textContent()).includes(`${secret.slice(0, 14)}…`)) throw new Error("the list does not show the key's prefix");
  if ((await page.content()).includes(secret.slice(14))) throw new Error("the page still holds the secret");
  if (!/expires/.test(await item.textContent())) throw new Error("the list does not show the expiry");
  await shoot(page, "keys-03-listed");

  await item.getByRole("button", { name: "Revoke the key e2e laptop" }).click();
  await item.getByRole("button", { name: "Revoke for good" }).click();
  await page.getByText("You have no API keys.").waitFor();
  await shoot(page, "keys-04-revoked");

  if (problems.length) throw new Error(`errors in the page:\n${problems.join("\n")}`);
  if (a11y.length) throw new Error(`axe-core found serious or critical problems:\n${a11y.join("\n")}`);
  console.log(`api-keys e2e passed in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${ARTIFACTS}`);
} catch (error) {
  await page.screenshot({ path: path.join(ARTIFACTS, "keys-failure.png"), fullPage: true }).catch(() => {});
  throw error;
} finally {
  await browser.close();
}
