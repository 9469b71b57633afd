import { useId, useState, type FormEvent } from "react";
import { Button, Field, ProblemAlert, ui } from "@/components/ui";
import { useApiKeys, useCreateApiKey, useRevokeApiKey, type ApiKeyView, type CreatedApiKey } from "../api/api-keys";
import styles from "./api-keys.module.css";

/** The longest name the API takes (identity's bound). */
export const NAME_MAX = 100;

/** How long a new key may live, as offered here (the API takes any future time). */
export const LIFETIMES = [
  { value: "never", label: "Never expires", days: null },
  { value: "30", label: "30 days", days: 30 },
  { value: "90", label: "90 days", days: 90 },
  { value: "365", label: "1 year", days: 365 },
] as const;

export function validateKeyName(name: string): string | undefined {
  if (!name.trim()) return "Give the key a name, so you know later what uses it.";
  if ([...name].length > NAME_MAX) return `At most ${NAME_MAX} characters.`;
  return undefined;
}

/** When a key of `days` days made at `now` expires (RFC 3339), or undefined for never. */
export function expiryFrom(days: number | null, now: Date = new Date()): string | undefined {
  return days === null ? undefined : new Date(now.getTime() + days * 86_400_000).toISOString();
}

const when = (iso: string) => new Date(iso).toLocaleString();
const isExpired = (k: ApiKeyView) => !!k.expiresAt && new Date(k.expiresAt).getTime() <= Date.now();

export function ApiKeysPage() {
  const [created, setCreated] = useState<CreatedApiKey>();
  return (
    <div className={ui.page}>
      <h1>API keys</h1>
      <p className={ui.hint}>
        A key lets a program use the OpenAI-compatible API (<code>/v1</code>) as you, on your plan. Treat it like a password; revoke a key
        you no longer use or that may have leaked.
      </p>
      {created ? <NewKey created={created} onDone={() => setCreated(undefined)} /> : <CreateKey onCreated={setCreated} />}
      <KeyList />
    </div>
  );
}

function CreateKey({ onCreated }: { onCreated: (key: CreatedApiKey) => void }) {
  const create = useCreateApiKey();
  const [name, setName] = useState("");
  const [lifetime, setLifetime] = useState<string>("90");
  const [error, setError] = useState<string>();
  const selectId = useId();
  const apiErrors = create.error?.problem.errors ?? {};

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const found = validateKeyName(name);
    setError(found);
    if (found) return;
    const days = LIFETIMES.find((l) => l.value === lifetime)?.days ?? null;
    const expiresAt = expiryFrom(days);
    create.mutate(
      { name: name.trim(), ...(expiresAt ? { expiresAt } : {}) },
      {
        onSuccess: (key) => {
          setName("");
          onCreated(key);
        },
      },
    );
  };

  return (
    <section className={styles.section} aria-labelledby="create-key-title">
      <h2 id="create-key-title">Create a key</h2>
      <form onSubmit={submit} noValidate>
        {!create.error?.problem.errors && <ProblemAlert problem={create.error?.problem} />}
        <Field
          label="Name"
          hint="What will use it, e.g. “CI pipeline” or “laptop”."
          value={name}
          maxLength={NAME_MAX}
          onChange={(e) => {
            setName(e.target.value);
            create.reset();
          }}
          error={error ?? apiErrors.name}
        />
        <div className={styles.field}>
          <label htmlFor={selectId}>
            <strong>Expires</strong>
          </label>
          <select id={selectId} className={styles.select} value={lifetime} onChange={(e) => setLifetime(e.target.value)}>
            {LIFETIMES.map((l) => (
              <option key={l.value} value={l.value}>
                {l.label}
              </option>
            ))}
          </select>
          {apiErrors.expiresAt && <span className={ui.fieldError}>{apiErrors.expiresAt}</span>}
        </div>
        <Button type="submit" disabled={create.isPending}>
          {create.isPending ? "Creating…" : "Create key"}
        </Button>
      </form>
    </section>
  );
}

/** The new key's secret, shown this once. */
function NewKey({ created, onDone }: { created: CreatedApiKey; onDone: () => void }) {
  const [copied, setCopied] = useState<"yes" | "failed">();
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(created.key);
      setCopied("yes");
    } catch {
      setCopied("failed");
    }
  };
  return (
    <section className={`${styles.section} ${styles.secret}`} aria-labelledby="new-key-title">
      <h2 id="new-key-title">Your new key “{created.name}”</h2>
      <p className={styles.warning} role="alert">
        Copy this key now. It is shown only this once: we keep only a fingerprint of it and cannot show it again.
      </p>
      <div className={styles.secretRow}>
        <input
          className={styles.secretValue}
          aria-label="The new API key"
          readOnly
          value={created.key}
          onFocus={(e) => e.currentTarget.select()}
        />
        <Button variant="secondary" onClick={() => void copy()}>
          Copy
        </Button>
        {copied === "yes" && <span role="status">Copied.</span>}
        {copied === "failed" && <span role="status">Could not copy: select the key and copy it yourself.</span>}
      </div>
      <Button onClick={onDone}>I have saved it</Button>
    </section>
  );
}

function KeyList() {
  const keys = useApiKeys();
  const revoke = useRevokeApiKey();
  const [confirming, setConfirming] = useState<string>();
  const items = keys.data?.items ?? [];
  return (
    <section className={styles.section} aria-labelledby="keys-title">
      <h2 id="keys-title">Your keys</h2>
      <ProblemAlert problem={keys.error?.problem ?? revoke.error?.problem} />
      {keys.isPending && <p>Loading…</p>}
      {keys.isSuccess && items.length === 0 && <p>You have no API keys.</p>}
      <ul className={styles.keys}>
        {items.map((k) => (
          <li key={k.id} className={styles.keyItem}>
            <div>
              <strong>{k.name}</strong>
              {isExpired(k) && <span className={styles.badge}>Expired</span>}
              <div className={ui.hint}>
                <span className={styles.prefix}>{k.prefix}…</span> · created {when(k.createdAt)} · last used{" "}
                {k.lastUsedAt ? when(k.lastUsedAt) : "never"} · {k.expiresAt ? `expires ${when(k.expiresAt)}` : "never expires"}
              </div>
            </div>
            {confirming === k.id ? (
              <div className={styles.row}>
                <Button
                  variant="danger"
                  disabled={revoke.isPending}
                  onClick={() => revoke.mutate(k.id, { onSettled: () => setConfirming(undefined) })}
                >
                  {revoke.isPending ? "Revoking…" : "Revoke for good"}
                </Button>
                <Button variant="secondary" onClick={() => setConfirming(undefined)}>
                  Keep it
                </Button>
              </div>
            ) : (
              <Button variant="secondary" onClick={() => setConfirming(k.id)} aria-label={`Revoke the key ${k.name}`}>
                Revoke
              </Button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
