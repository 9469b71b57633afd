// The admin dashboard end to end in Debian's chromium (playwright-core)
// against `make run`'s stack, analytics included: a new user is made an
// admin with `identity make-admin` (as `make admin` does), logs in, opens
// /admin from the navigation; today's signup shows in the signups table
// (analytics caught up from identity's event), the other figures render;
// axe-core finds nothing serious or critical at 1280 and 375 px; the
// signups and users-by-plan CSVs download with their columns. Screenshots
// in e2e/artifacts/. Run: `make e2e` (deploy/local/e2e.sh, after
// signup-chat.mjs), or `node e2e/admin.mjs` with a stack up (BASE_URL;
// IDENTITY_BIN and IDENTITY_DATABASE_URL say how to run make-admin, else
// `make admin` from the repository's root).
import { execFileSync } from "node:child_process";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const axeSource = await readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const here = path.dirname(fileURLToPath(import.meta.url));
const BASE = process.env.BASE_URL ?? "http://127.0.0.1:8080";
const ARTIFACTS = path.join(here, "artifacts");
const email = `e2e-admin-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
const password = "correct horse battery staple";
const today = new Date().toISOString().slice(0, 10);

/** `identity make-admin --email` on the stack's identity database. */
function makeAdmin() {
  if (process.env.IDENTITY_BIN) {
    execFileSync(process.env.IDENTITY_BIN, ["make-admin", "--email", email], {
      env: { ...process.env, DATABASE_URL: process.env.IDENTITY_DATABASE_URL, RUST_LOG: "warn" },
      stdio: ["ignore", "ignore", "inherit"],
    });
  } else {
    execFileSync("make", ["-s", "admin", `EMAIL=${email}`], { cwd: path.resolve(here, "../.."), stdio: ["ignore", "ignore", "inherit"] });
  }
}

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
    // The page scrolls inside <main>: the viewport as high as its content.
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

/** Clicks a section's "Download CSV of …" button; the saved file's lines. */
async function downloadCsv(page, section, label) {
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    section.getByRole("button", { name: `Download CSV of ${label}` }).click(),
  ]);
  const name = download.suggestedFilename();
  if (!/\.csv$/.test(name)) throw new Error(`the ${label} download is named ${name}`);
  return { name, lines: (await readFile(await download.path(), "utf8")).trim().split(/\r?\n/) };
}

const started = Date.now();
await mkdir(ARTIFACTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
const violations = [];
page.on("console", (msg) => {
  if (msg.type() === "error") violations.push(msg.text());
});
page.on("pageerror", (e) => violations.push(String(e)));
page.on("response", (r) => {
  if (r.status() >= 400) violations.push(`${r.status()} ${r.request().method()} ${r.url()}`);
});
try {
  const registered = await fetch(`${BASE}/api/v1/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password, name: "E2E Admin" }),
  });
  if (registered.status !== 201) throw new Error(`register answered ${registered.status}`);
  makeAdmin();

  await page.goto(`${BASE}/login`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(/\/chat$/);
  await page.getByRole("link", { name: "Admin" }).click();
  await page.waitForURL(/\/admin$/);
  await page.getByRole("heading", { level: 1, name: "Admin" }).waitFor();

  // Today's signup (this admin's at least) in the signups table; analytics
  // may lag identity's event by a moment: reload until it is there.
  const signups = page.getByRole("region", { name: "Signups per day" });
  let todays = 0;
  const deadline = Date.now() + 15_000;
  for (;;) {
    await signups.getByRole("button", { name: /^Show as table/ }).click();
    const row = signups.locator("tr", { has: page.locator(`time[datetime="${today}"]`) });
    await row.waitFor();
    todays = Number((await row.locator("td").first().innerText()).replace(/[^0-9]/g, ""));
    if (todays >= 1 || Date.now() > deadline) break;
    await page.reload();
    await page.getByRole("heading", { level: 1, name: "Admin" }).waitFor();
  }
  if (!(todays >= 1)) throw new Error(`the signups table shows ${todays} signups today`);
  // The other figures render: users by plan has the FREE tier, MRR is an amount.
  const plans = page.getByRole("region", { name: "Users by plan" });
  await plans.getByRole("table", { name: "Active users per plan tier" }).getByRole("row", { name: /FREE|Free/ }).first().waitFor();
  const mrr = (await page.getByTestId("mrr").innerText()).trim();
  if (!/\d/.test(mrr)) throw new Error(`MRR reads "${mrr}"`);
  for (const title of ["Subscriptions by plan", "Token usage by model", "Top users", "Conversation length", "Overdue invoices", "Lifetime value"]) {
    const section = page.getByRole("region", { name: title });
    await section.waitFor();
    await page.waitForFunction((t) => {
      const h = [...document.querySelectorAll("section h2")].find((e) => e.textContent === t);
      const s = h?.closest("section");
      return s && s.getAttribute("aria-busy") === "false" && !s.querySelector('[role="status"]');
    }, title);
  }
  await shoot(page, "10-admin");

  const daily = await downloadCsv(page, signups, "Signups per day");
  if (daily.lines[0] !== "date,signups,messages,tokens,cost,revenue,mrr,newSubscriptions,churnedSubscriptions") {
    throw new Error(`the daily CSV's header is ${daily.lines[0]}`);
  }
  const todayLine = daily.lines.find((l) => l.startsWith(`${today},`));
  if (!todayLine || !(Number(todayLine.split(",")[1]) >= 1)) throw new Error(`the daily CSV's today is ${todayLine}`);
  const byPlan = await downloadCsv(page, plans, "Users by plan");
  if (byPlan.lines[0] !== "planTier,count" || !byPlan.lines.some((l) => l.startsWith("FREE,"))) {
    throw new Error(`the users-by-plan CSV reads ${byPlan.lines.join(" | ")}`);
  }

  if (a11y.length) throw new Error(`axe-core found serious or critical problems:\n${a11y.join("\n")}`);
  if (violations.length) throw new Error(`errors in the page's console:\n${violations.join("\n")}`);
  console.log(
    `admin e2e ok in ${((Date.now() - started) / 1000).toFixed(1)} s: ${todays} signups today on /admin, MRR ${mrr}, ${daily.name} and ${byPlan.name} downloaded; screenshots in ${ARTIFACTS}`,
  );
} catch (error) {
  await page.screenshot({ path: path.join(ARTIFACTS, "admin-failure.png"), fullPage: true }).catch(() => {});
  console.error(`admin e2e failed at ${page.url()}:`, error);
  process.exitCode = 1;
} finally {
  await browser.close();
}
