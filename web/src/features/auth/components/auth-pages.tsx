import { useEffect, useRef, useState, type FormEvent } from "react";
import { Link, useLocation, useNavigate, useSearchParams } from "react-router-dom";
import { Button, Card, Field, ProblemAlert, ui } from "@/components/ui";
import { useForgotPassword, useLogin, useRegister, useResetPassword, useVerifyEmail } from "../api/auth";
import { validateEmail, validateName, validatePassword } from "@/lib/validate";

type Errors = Record<string, string | undefined>;

function hasErrors(errors: Errors): boolean {
  return Object.values(errors).some(Boolean);
}

export function LoginPage() {
  const login = useLogin();
  const navigate = useNavigate();
  const location = useLocation();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<Errors>({});
  const next = (location.state as { from?: string } | null)?.from ?? "/chat";

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const found = { email: validateEmail(email), password: password ? undefined : "Enter your password." };
    setErrors(found);
    if (hasErrors(found)) return;
    login.mutate({ email: email.trim(), password }, { onSuccess: () => navigate(next, { replace: true }) });
  };

  return (
    <Card title="Log in">
      <form onSubmit={submit} noValidate>
        <ProblemAlert problem={login.error?.problem} />
        <Field label="Email" type="email" autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} error={errors.email} />
        <Field
          label="Password"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={errors.password}
        />
        <Button type="submit" disabled={login.isPending}>
          {login.isPending ? "Logging in…" : "Log in"}
        </Button>
      </form>
      <p>
        <Link to="/forgot-password">Forgot your password?</Link>
      </p>
      <p>
        No account yet? <Link to="/signup">Sign up</Link>
      </p>
    </Card>
  );
}

export function SignupPage() {
  const register = useRegister();
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<Errors>({});
  const apiErrors = register.error?.problem.errors ?? {};

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const found = {
      name: validateName(name),
      email: validateEmail(email),
      password: validatePassword(password),
    };
    setErrors(found);
    if (hasErrors(found)) return;
    register.mutate(
      { name: name.trim(), email: email.trim(), password },
      { onSuccess: () => navigate("/check-email", { state: { email: email.trim() } }) },
    );
  };

  return (
    <Card title="Create your account">
      <form onSubmit={submit} noValidate>
        <ProblemAlert problem={register.error?.problem}>
          {register.error?.problem.code === "email_taken" && <Link to="/login">Log in</Link>}
        </ProblemAlert>
        <Field label="Name" autoComplete="name" value={name} onChange={(e) => setName(e.target.value)} error={errors.name ?? apiErrors.name} />
        <Field
          label="Email"
          type="email"
          autoComplete="email"
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          error={errors.email ?? apiErrors.email}
        />
        <Field
          label="Password"
          type="password"
          autoComplete="new-password"
          hint="At least 10 characters; not a common password."
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={errors.password ?? apiErrors.password}
        />
        <Button type="submit" disabled={register.isPending}>
          {register.isPending ? "Creating…" : "Sign up"}
        </Button>
      </form>
      <p>
        Already have an account? <Link to="/login">Log in</Link>
      </p>
    </Card>
  );
}

export function CheckEmailPage() {
  const location = useLocation();
  const email = (location.state as { email?: string } | null)?.email;
  return (
    <Card title="Check your mail">
      <p>
        We sent a link to {email ? <strong>{email}</strong> : "your email address"}. Open it to verify your address, then log
        in.
      </p>
      <p>
        <Link to="/login">Go to log in</Link>
      </p>
    </Card>
  );
}

export function VerifyEmailPage() {
  const [params] = useSearchParams();
  const token = params.get("token");
  const verify = useVerifyEmail();
  const sent = useRef(false);
  const { mutate } = verify;

  useEffect(() => {
    if (token && !sent.current) {
      sent.current = true;
      mutate(token);
    }
  }, [token, mutate]);

  return (
    <Card title="Verify your email">
      {!token && <p role="alert">This link has no token. Open the link from the mail again.</p>}
      {verify.isPending && <p aria-live="polite">Verifying…</p>}
      <ProblemAlert problem={verify.error?.problem} />
      {verify.isSuccess && (
        <p aria-live="polite">
          Your email is verified. <Link to="/login">Log in</Link>
        </p>
      )}
    </Card>
  );
}

export function ForgotPasswordPage() {
  const forgot = useForgotPassword();
  const [email, setEmail] = useState("");
  const [error, setError] = useState<string>();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const found = validateEmail(email);
    setError(found);
    if (!found) forgot.mutate(email.trim());
  };

  if (forgot.isSuccess) {
    return (
      <Card title="Check your mail">
        <p>If an account uses {email.trim()}, we sent it a link to choose a new password.</p>
        <p>
          <Link to="/login">Back to log in</Link>
        </p>
      </Card>
    );
  }
  return (
    <Card title="Forgot your password?">
      <form onSubmit={submit} noValidate>
        <ProblemAlert problem={forgot.error?.problem} />
        <Field label="Email" type="email" autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} error={error} />
        <Button type="submit" disabled={forgot.isPending}>
          Send the link
        </Button>
      </form>
    </Card>
  );
}

export function ResetPasswordPage() {
  const [params] = useSearchParams();
  const token = params.get("token");
  const reset = useResetPassword();
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string>();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const found = validatePassword(password);
    setError(found);
    if (!found && token) reset.mutate({ token, password });
  };

  if (reset.isSuccess) {
    return (
      <Card title="Password changed">
        <p>Your password is changed and every session is logged out.</p>
        <p>
          <Link to="/login">Log in</Link>
        </p>
      </Card>
    );
  }
  return (
    <Card title="Choose a new password">
      {!token && <p role="alert">This link has no token. Open the link from the mail again.</p>}
      <form onSubmit={submit} noValidate>
        <ProblemAlert problem={reset.error?.problem} />
        <Field
          label="New password"
          type="password"
          autoComplete="new-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={error ?? reset.error?.problem.errors?.password}
        />
        <Button type="submit" disabled={reset.isPending || !token}>
          Change password
        </Button>
      </form>
      <p className={ui.hint}>
        <Link to="/login">Back to log in</Link>
      </p>
    </Card>
  );
}
