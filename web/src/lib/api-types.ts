// The API's types, generated from the gateway's openapi.json (npm run gen:api,
// run by build and typecheck): a change of the contract breaks `tsc`.
import type { components, paths } from "./api-schema";

export type Schemas = components["schemas"];
export type ApiPath = keyof paths;
export type User = Schemas["User"];
export type TokenResponse = Schemas["TokenResponse"];
export type Conversation = Schemas["Conversation"];
export type ConversationPage = Schemas["ConversationPage"];
export type Message = Schemas["Message"];
export type MessagePage = Schemas["MessagePage"];
export type Model = Schemas["Model"];
export type ModelList = Schemas["ModelList"];
export type MonthlyUsage = Schemas["MonthlyUsage"];
export type DoneEvent = Schemas["DoneEvent"];
export type ReplyUsage = Schemas["ReplyUsage"];
export type ProblemBody = Schemas["Problem"];
export type Plan = Schemas["Plan"];
export type PlanList = Schemas["PlanList"];
export type Subscription = Schemas["Subscription"];
export type BillingInterval = Schemas["BillingInterval"];
export type CheckoutSession = Schemas["CheckoutSession"];
export type PortalSession = Schemas["PortalSession"];
export type Invoice = Schemas["Invoice"];
export type InvoicePage = Schemas["InvoicePage"];
export type Payment = Schemas["Payment"];
export type PaymentPage = Schemas["PaymentPage"];
