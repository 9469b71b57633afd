import { Suspense, lazy } from "react";
import { ui } from "@/components/ui";
import { useSession } from "@/hooks/use-session";

// The dashboard (its charts, tables and API hooks) is a chunk of its own,
// fetched only when an admin opens this page.
const Dashboard = lazy(() => import("./dashboard"));

/**
 * The administrators' place (role admin; the nav shows it to them only).
 * Anyone else is told there is nothing here, as for any unknown page; the
 * gateway refuses them the figures all the same (403).
 */
export function AdminPage() {
  const session = useSession();
  if (session?.user.role !== "admin") {
    return (
      <div className={ui.page}>
        <h1>Not found</h1>
        <p>There is no page here.</p>
      </div>
    );
  }
  return (
    <div className={ui.page}>
      <Suspense fallback={<p role="status">Loading the dashboard…</p>}>
        <Dashboard />
      </Suspense>
    </div>
  );
}
