import { Link, NavLink, Outlet, useNavigate } from "react-router-dom";
import { logout } from "@/features/auth/api/auth";
import { useSession } from "@/hooks/use-session";
import styles from "./layout.module.css";

export function AppLayout() {
  const session = useSession();
  const navigate = useNavigate();
  const isAdmin = session?.user.role === "admin";
  return (
    <>
      <header>
        <nav className={styles.nav} aria-label="Main">
          <Link to="/chat" className={styles.brand}>
            AI Chat
          </Link>
          <ul className={styles.links}>
            <li>
              <NavLink to="/chat">Chat</NavLink>
            </li>
            <li>
              <NavLink to="/usage">Usage</NavLink>
            </li>
            <li>
              <NavLink to="/billing">Plans</NavLink>
            </li>
            <li>
              <NavLink to="/account">Account</NavLink>
            </li>
            <li>
              <NavLink to="/api-keys">API keys</NavLink>
            </li>
            {isAdmin && (
              <li>
                <NavLink to="/admin">Admin</NavLink>
              </li>
            )}
            <li>
              <button
                type="button"
                className={styles.logout}
                onClick={() => void logout().finally(() => navigate("/login", { replace: true }))}
              >
                Log out{session ? ` (${session.user.name})` : ""}
              </button>
            </li>
          </ul>
        </nav>
      </header>
      <main>
        <Outlet />
      </main>
    </>
  );
}

export function PublicLayout() {
  return (
    <>
      <header>
        <nav className={styles.nav} aria-label="Main">
          <Link to="/" className={styles.brand}>
            AI Chat
          </Link>
          <ul className={styles.links}>
            <li>
              <NavLink to="/login">Log in</NavLink>
            </li>
            <li>
              <NavLink to="/signup">Sign up</NavLink>
            </li>
          </ul>
        </nav>
      </header>
      <main>
        <Outlet />
      </main>
    </>
  );
}
