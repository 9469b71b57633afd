import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { restoreSession } from "@/lib/refresh";
import { App } from "./app/app";
import "./app/global.css";

// A reload keeps the session: the cookie is traded for an access token
// while the app shows "Loading…".
void restoreSession();

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}
