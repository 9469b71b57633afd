// End to end in Debian's chromium (playwright-core, no browser download)
// against `make run`'s stack: sign up → the mail's link → log in → a
// streamed reply → usage shows it. Screenshots at 375 and 1280 px in
// e2e/artifacts/. Run: `make e2e` (deploy/local/e2e.sh starts a stack), or
// `node e2e/signup-chat.mjs` with a stack up (BASE_URL, MAIL_DIR, CHROMIUM
// override the defaults).
import { mkdir, readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { createRequire } from "node:module";

const axeSource = await readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const here = path.dirname(fileURLToPath(import.meta.url));
const BASE = process.env.BASE_URL ?? "http://127.0.0.1:8080";
const MAIL_DIR = process.env.MAIL_DIR ?? path.resolve(here, "../../.run/mail");
const ARTIFACTS = path.join(here, "artifacts");
const email = `e2e-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
const password = "correct horse battery staple";

async function mailLink(kind) {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    for (const name of await readdir(MAIL_DIR).catch(() => [])) {
      if (!name.endsWith(".eml")) continue;
      const raw = await readFile(path.join(MAIL_DIR, name), "utf8");
      if (!raw.includes(email)) continue;
      // quoted-printable: soft line breaks and "=3D"
      const text = raw.replace(/=\r?\n/g, "").replace(/=3D/gi, "=");
      const m = text.match(new RegExp(`https?://[^\\s"<>]*/${kind}\\?token=[A-Za-z0-9_.~-]+`));
      if (m) {
        const link = new URL(m[0]);
        return `${BASE}${link.pathname}${link.search}`;
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no ${kind} mail for ${email} in ${MAIL_DIR}`);
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

async function shoot(page, name) {
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: 800 });
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}-${width}.png`), fullPage: true });
    await audit(page, `${name}@${width}`);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

const started = Date.now();
await mkdir(ARTIFACTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const violations = [];
page.on("console", (msg) => {
  if (msg.type() === "error") violations.push(msg.text());
});
page.on("pageerror", (e) => violations.push(String(e)));
page.on("response", (r) => {
  if (r.status() >= 400) violations.push(`${r.status()} ${r.request().method()} ${r.url()}`);
});
try {
  await page.goto(`${BASE}/signup`);
  await page.getByLabel("Name").fill("E2E Ada");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await shoot(page, "01-signup");
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByRole("heading", { name: "Check your mail" }).waitFor();
  await shoot(page, "02-check-mail");

  await page.goto(await mailLink("verify-email"));
  await page.getByText("Your email is verified").waitFor();
  await shoot(page, "03-verified");

  await page.getByRole("link", { name: "Log in" }).first().click();
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(/\/chat$/);

  await page.getByRole("link", { name: "+ New conversation" }).click();
  await page.getByLabel("Model").waitFor();
  await page.waitForFunction(() => document.querySelectorAll("#model option").length > 0);
  await shoot(page, "04-new-conversation");
  await page.getByRole("button", { name: "Start" }).click();
  await page.waitForURL(/\/chat\/[^/]+$/);

  await page.getByLabel("Message", { exact: true }).fill("Hello! Tell me something.");
  await page.keyboard.press("Enter");
  await page.getByRole("button", { name: "Stop" }).waitFor({ timeout: 10_000 }).catch(() => {});
  await page.getByRole("button", { name: "Send" }).waitFor({ timeout: 30_000 });
  const replies = page.locator("article", { hasText: "Assistant" });
  await replies.first().waitFor();
  const reply = (await replies.first().innerText()).replace(/^Assistant\s*/, "");
  if (reply.trim().length === 0 || reply.trim() === "…") throw new Error("no reply shown");
  await shoot(page, "05-chat");

  // Esc stops a reply as it streams (deploy/local/e2e.sh slows the mock
  // down so that there is time to).
  await page.getByLabel("Message", { exact: true }).fill("Another one, please.");
  await page.keyboard.press("Enter");
  const stop = page.getByRole("button", { name: "Stop" });
  await stop.waitFor({ timeout: 10_000 });
  await page.waitForFunction(() => {
    const live = document.querySelector('article[aria-live="polite"]');
    return live === null || !live.textContent?.endsWith("…");
  });
  let stopped = false;
  if (await stop.isVisible()) {
    await page.getByLabel("Message", { exact: true }).press("Escape");
    await page.getByRole("button", { name: "Send" }).waitFor({ timeout: 5_000 });
    await page.getByRole("alert").filter({ hasText: "Stopped" }).waitFor({ timeout: 5_000 });
    stopped = true;
    await shoot(page, "05b-stopped");
  }

  await page.getByRole("link", { name: "Usage" }).click();
  const used = page.getByTestId("tokens-used");
  await used.waitFor();
  const tokens = Number((await used.innerText()).replace(/[^0-9]/g, ""));
  if (!(tokens > 0)) throw new Error(`usage shows ${tokens} tokens`);
  await shoot(page, "06-usage");
  if (a11y.length) throw new Error(`axe-core found serious or critical problems:\n${a11y.join("\n")}`);
  if (violations.length) throw new Error(`errors in the page's console:\n${violations.join("\n")}`);
  console.log(
    `e2e ok in ${((Date.now() - started) / 1000).toFixed(1)} s: reply "${reply.slice(0, 40)}…", ${stopped ? "a second one stopped with Esc" : "the second reply ended before Esc"}, ${tokens} tokens; screenshots in ${ARTIFACTS}`,
  );
} catch (error) {
  await page.screenshot({ path: path.join(ARTIFACTS, "failure.png"), fullPage: true }).catch(() => {});
  console.error(`e2e failed at ${page.url()}:`, error);
  process.exitCode = 1;
} finally {
  await browser.close();
}
