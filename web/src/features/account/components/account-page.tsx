import { useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { Button, Card, Field, ProblemAlert, ui } from "@/components/ui";
import { useSession } from "@/hooks/use-session";
import { validateName, validatePassword } from "@/lib/validate";
import {
  useChangePassword,
  endSession,
  useDeleteAccount,
  useRevokeOtherSessions,
  useRevokeSession,
  useSessions,
  useUpdateName,
  type SessionView,
} from "../api/account";
import styles from "./account.module.css";

export function AccountPage() {
  return (
    <div className={ui.page}>
      <h1>Account</h1>
      <NameForm />
      <PasswordForm />
      <Sessions />
      <DeleteAccount />
    </div>
  );
}

export function NameForm() {
  const session = useSession();
  const update = useUpdateName();
  const [name, setName] = useState(session?.user.name ?? "");
  const [error, setError] = useState<string>();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const found = validateName(name);
    setError(found);
    if (!found) update.mutate(name.trim());
  };

  return (
    <section className={styles.section} aria-labelledby="profile-title">
      <h2 id="profile-title">Profile</h2>
      <p className={ui.hint}>Email: {session?.user.email}</p>
      <form onSubmit={submit} noValidate>
        <ProblemAlert problem={update.error?.problem} />
        <Field
          label="Name"
          autoComplete="name"
          value={name}
          onChange={(e) => {
            setName(e.target.value);
            update.reset();
          }}
          error={error ?? update.error?.problem.errors?.name}
        />
        <Button type="submit" disabled={update.isPending}>
          Save name
        </Button>
        {update.isSuccess && (
          <span role="status" className={styles.saved}>
            Saved.
          </span>
        )}
      </form>
    </section>
  );
}

export function PasswordForm() {
  const change = useChangePassword();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [confirm, setConfirm] = useState("");
  const [errors, setErrors] = useState<Record<string, string | undefined>>({});
  const apiErrors = change.error?.problem.errors ?? {};

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const found = {
      current: current ? undefined : "Enter your current password.",
      next: validatePassword(next),
      confirm: confirm === next ? undefined : "The two new passwords differ.",
    };
    setErrors(found);
    if (Object.values(found).some(Boolean)) return;
    change.mutate(
      { currentPassword: current, newPassword: next },
      {
        onSuccess: () => {
          setCurrent("");
          setNext("");
          setConfirm("");
        },
      },
    );
  };

  return (
    <section className={styles.section} aria-labelledby="password-title">
      <h2 id="password-title">Password</h2>
      <form onSubmit={submit} noValidate>
        {!change.error?.problem.errors && <ProblemAlert problem={change.error?.problem} />}
        <Field
          label="Current password"
          type="password"
          autoComplete="current-password"
          value={current}
          onChange={(e) => setCurrent(e.target.value)}
          error={errors.current ?? apiErrors.currentPassword}
        />
        <Field
          label="New password"
          type="password"
          autoComplete="new-password"
          hint="At least 10 characters; not a common password."
          value={next}
          onChange={(e) => setNext(e.target.value)}
          error={errors.next ?? apiErrors.newPassword}
        />
        <Field
          label="New password again"
          type="password"
          autoComplete="new-password"
          value={confirm}
          onChange={(e) => setConfirm(e.target.value)}
          error={errors.confirm}
        />
        <Button type="submit" disabled={change.isPending}>
          Change password
        </Button>
        {change.isSuccess && (
          <span role="status" className={styles.saved}>
            Password changed; your other sessions are logged out.
          </span>
        )}
      </form>
    </section>
  );
}

/** "Firefox on Linux" from a User-Agent, or the start of it. */
export function describeAgent(agent: string | null | undefined): string {
  if (!agent) return "Unknown device";
  const browser = /Edg\//.test(agent)
    ? "Edge"
    : /Firefox\//.test(agent)
      ? "Firefox"
      : /Chrom(e|ium)\//.test(agent)
        ? "Chrome"
        : /Safari\//.test(agent)
          ? "Safari"
          : null;
  const os = /Android/.test(agent)
    ? "Android"
    : /iPhone|iPad/.test(agent)
      ? "iOS"
      : /Windows/.test(agent)
        ? "Windows"
        : /Mac OS X/.test(agent)
          ? "macOS"
          : /Linux/.test(agent)
            ? "Linux"
            : null;
  if (browser && os) return `${browser} on ${os}`;
  return browser ?? os ?? (agent.length > 40 ? `${agent.slice(0, 40)}…` : agent);
}

const when = (iso: string) => new Date(iso).toLocaleString();

function Sessions() {
  const sessions = useSessions();
  const revoke = useRevokeSession();
  const revokeOthers = useRevokeOtherSessions();
  const items = sessions.data?.items ?? [];
  const others = items.filter((s) => !s.current).length;
  return (
    <section className={styles.section} aria-labelledby="sessions-title">
      <h2 id="sessions-title">Sessions</h2>
      <p className={ui.hint}>Where your account is logged in. Revoke a session you do not recognise.</p>
      <ProblemAlert problem={sessions.error?.problem ?? revoke.error?.problem ?? revokeOthers.error?.problem} />
      {sessions.isPending && <p>Loading…</p>}
      <ul className={styles.sessions}>
        {items.map((s: SessionView) => (
          <li key={s.id} className={styles.sessionItem} data-current={s.current}>
            <div>
              <strong>{describeAgent(s.userAgent)}</strong>
              {s.current && <span className={styles.badge}>This device</span>}
              <div className={ui.hint}>
                {s.ipAddress ?? "unknown address"} · last active {when(s.lastActivityAt)} · since {when(s.createdAt)}
              </div>
            </div>
            {!s.current && (
              <Button
                variant="secondary"
                disabled={revoke.isPending && revoke.variables === s.id}
                onClick={() => revoke.mutate(s.id)}
                aria-label={`Revoke the session of ${describeAgent(s.userAgent)} at ${s.ipAddress ?? "an unknown address"}`}
              >
                Revoke
              </Button>
            )}
          </li>
        ))}
      </ul>
      {others > 0 && (
        <Button variant="secondary" disabled={revokeOthers.isPending} onClick={() => revokeOthers.mutate(items)}>
          {revokeOthers.isPending ? "Logging out…" : `Log out everywhere else (${others})`}
        </Button>
      )}
    </section>
  );
}

export function DeleteAccount() {
  const remove = useDeleteAccount();
  const navigate = useNavigate();
  const [open, setOpen] = useState(false);
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string>();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!password) return setError("Enter your password to confirm.");
    setError(undefined);
    // The page after ends this page's session (here, the log-in redirect
    // of the signed-in pages would race the navigation).
    remove.mutate(password, { onSuccess: () => navigate("/account-deleted", { replace: true }) });
  };

  return (
    <section className={`${styles.section} ${styles.danger}`} aria-labelledby="delete-title">
      <h2 id="delete-title">Delete account</h2>
      <p>Your account, conversations and usage history are deleted for good; a paid plan is cancelled.</p>
      {!open ? (
        <Button variant="danger" onClick={() => setOpen(true)}>
          Delete my account…
        </Button>
      ) : (
        <form onSubmit={submit} noValidate>
          {!remove.error?.problem.errors && <ProblemAlert problem={remove.error?.problem} />}
          <Field
            label="Your password, to confirm"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            error={error ?? (remove.error?.problem.errors?.password ? "That password is not correct." : undefined)}
            autoFocus
          />
          <div className={styles.row}>
            <Button type="submit" variant="danger" disabled={remove.isPending}>
              {remove.isPending ? "Deleting…" : "Delete my account for good"}
            </Button>
            <Button variant="secondary" onClick={() => setOpen(false)}>
              Cancel
            </Button>
          </div>
        </form>
      )}
    </section>
  );
}

/** Where a deleted account lands (a public page): this page's session ends here. */
export function AccountDeletedPage() {
  useEffect(() => endSession(), []);
  return (
    <Card title="Account deleted">
      <p role="status">Your account is deleted. Thank you for trying AI Chat.</p>
      <p>
        <Link to="/signup">Sign up again</Link> or <Link to="/login">log in</Link> with another account.
      </p>
    </Card>
  );
}
