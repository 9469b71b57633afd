import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { Button, ProblemAlert, ui } from "@/components/ui";
import { useCreateConversation, useModels } from "../api/chat";
import styles from "./chat.module.css";

export function NewConversation() {
  const models = useModels();
  const create = useCreateConversation();
  const navigate = useNavigate();
  const [model, setModel] = useState("");
  const [systemPrompt, setSystemPrompt] = useState("");
  const items = models.data?.items ?? [];
  const chosen = model || items.find((m) => m.available)?.id || "";

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!chosen) return;
    create.mutate(
      { model: chosen, ...(systemPrompt.trim() ? { systemPrompt: systemPrompt.trim() } : {}) },
      { onSuccess: (c) => navigate(`/chat/${c.id}`) },
    );
  };

  return (
    <div className={ui.page}>
      <Link to="/chat" className={styles.back}>
        ← Conversations
      </Link>
      <h1>New conversation</h1>
      <form onSubmit={submit} className={styles.newForm}>
        <ProblemAlert problem={models.error?.problem ?? create.error?.problem}>
          {create.error?.problem.status === 402 && <Link to="/billing">See the plans</Link>}
        </ProblemAlert>
        <div className={ui.field}>
          <label htmlFor="model">Model</label>
          <select id="model" value={chosen} onChange={(e) => setModel(e.target.value)} disabled={models.isPending}>
            {items.map((m) => (
              <option key={m.id} value={m.id} disabled={!m.available}>
                {m.id} ({m.provider}){m.available ? "" : " — unavailable"}
              </option>
            ))}
          </select>
        </div>
        <div className={ui.field}>
          <label htmlFor="system-prompt">System prompt (optional)</label>
          <textarea
            id="system-prompt"
            rows={4}
            value={systemPrompt}
            onChange={(e) => setSystemPrompt(e.target.value)}
            placeholder="For example: Answer briefly."
          />
        </div>
        <Button type="submit" disabled={!chosen || create.isPending}>
          {create.isPending ? "Starting…" : "Start"}
        </Button>
      </form>
    </div>
  );
}
