// Shared building blocks: buttons, labelled fields, the problem alert.
import type { ButtonHTMLAttributes, InputHTMLAttributes, ReactNode } from "react";
import { useId } from "react";
import { problemMessage, type Problem } from "@/lib/problem";
import styles from "./ui.module.css";

export { styles as ui };

type Variant = "primary" | "secondary" | "danger";

export function Button({ variant = "primary", className, ...props }: ButtonHTMLAttributes<HTMLButtonElement> & { variant?: Variant }) {
  const cls = [styles.button, variant !== "primary" ? styles[variant] : "", className ?? ""].join(" ").trim();
  return <button type="button" {...props} className={cls} />;
}

export function Field({
  label,
  error,
  hint,
  ...input
}: InputHTMLAttributes<HTMLInputElement> & { label: string; error?: string; hint?: string }) {
  const id = useId();
  const described = [error ? `${id}-error` : "", hint ? `${id}-hint` : ""].filter(Boolean).join(" ") || undefined;
  return (
    <div className={styles.field}>
      <label htmlFor={id}>{label}</label>
      <input id={id} className={styles.input} aria-invalid={error ? true : undefined} aria-describedby={described} {...input} />
      {hint && (
        <span id={`${id}-hint`} className={styles.hint}>
          {hint}
        </span>
      )}
      {error && (
        <span id={`${id}-error`} className={styles.fieldError}>
          {error}
        </span>
      )}
    </div>
  );
}

/** A problem from the API, as a sentence, where it happened. */
export function ProblemAlert({ problem, children }: { problem: Problem | null | undefined; children?: ReactNode }) {
  if (!problem) return null;
  return (
    <div role="alert" className={styles.alert}>
      {problemMessage(problem)} {children}
    </div>
  );
}

export function Card({ title, children }: { title: string; children: ReactNode }) {
  return (
    <section className={styles.card} aria-labelledby="card-title">
      <h1 id="card-title">{title}</h1>
      {children}
    </section>
  );
}
