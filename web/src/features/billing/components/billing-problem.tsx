import { ui } from "@/components/ui";
import { problemMessage, type Problem } from "@/lib/problem";

/** A billing call's problem as a sentence a person can act on. */
export function billingMessage(problem: Problem): string {
  switch (problem.code) {
    case "stripe_not_configured":
      return "Payments are not set up on this server yet.";
    case "already_subscribed":
      return "You already have a subscription. Change it with “Manage payment methods”.";
    case "no_billing_account":
      return "There is no billing account yet: it is made with your first upgrade.";
    case "not_canceling":
      return "Your subscription is not set to cancel.";
    case "subscription_ended":
      return "Your subscription has ended. Upgrade to start a new one.";
    case "stripe_error":
      return "The payment provider refused the request. Try again later.";
    case "upstream_timeout":
      return "The payment provider took too long to answer. Try again.";
    case "unavailable":
      return "Billing is unavailable right now. Try again in a moment.";
    case "not_found":
      return problem.detail || "That plan or subscription does not exist.";
    default:
      return problemMessage(problem);
  }
}

/** The problem of a billing call, where it happened. */
export function BillingAlert({ problem }: { problem: Problem | null | undefined }) {
  if (!problem) return null;
  return (
    <div role="alert" className={ui.alert}>
      {billingMessage(problem)}
    </div>
  );
}
