import { Component, type ErrorInfo, type ReactNode } from "react";
import styles from "./ui.module.css";

interface State {
  error: Error | null;
}

/** Never a blank screen: a render error shows a message and a way out. */
export class ErrorBoundary extends Component<{ children: ReactNode }, State> {
  state: State = { error: null };

  static getDerivedStateFromError(error: Error): State {
    return { error };
  }

  componentDidCatch(error: Error, info: ErrorInfo): void {
    console.error(error, info.componentStack);
  }

  render(): ReactNode {
    if (!this.state.error) return this.props.children;
    return (
      <section role="alert" className={styles.card}>
        <h1>Something went wrong</h1>
        <p>This page failed to show. Reloading usually helps.</p>
        <p>
          <button type="button" className={styles.button} onClick={() => window.location.assign("/")}>
            Back to the start
          </button>
        </p>
      </section>
    );
  }
}
