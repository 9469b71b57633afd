import { ui } from "@/components/ui";
import { useSession } from "@/hooks/use-session";

/** The administrators' place; its dashboards come with the analytics service. */
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
      <h1>Admin</h1>
      <p>Admin dashboards arrive with analytics.</p>
    </div>
  );
}
