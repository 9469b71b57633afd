import js from "@eslint/js";
import reactHooks from "eslint-plugin-react-hooks";
import globals from "globals";
import tseslint from "typescript-eslint";

const features = ["auth", "chat", "billing", "account", "admin", "api-keys"];

// bulletproof-react's boundaries: shared code (components, lib, hooks) never
// imports features or the app; a feature never imports another feature; only
// src/app puts features together.
const featureRules = features.map((feature) => ({
  files: [`src/features/${feature}/**/*.{ts,tsx}`],
  rules: {
    "no-restricted-imports": [
      "error",
      {
        patterns: [
          {
            group: [
              ...features.filter((f) => f !== feature).flatMap((f) => [`@/features/${f}`, `@/features/${f}/*`, `**/features/${f}/*`]),
              "@/app",
              "@/app/*",
              // out of the feature's own folder by a relative path
              "../../*",
            ],
            message: "A feature does not import another feature or the app shell; share through components/, lib/ or hooks/ (with @/).",
          },
        ],
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ["dist", "node_modules", "src/lib/api-schema.d.ts"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.{ts,tsx,js,mjs}"],
    languageOptions: { globals: { ...globals.browser, ...globals.node } },
    plugins: { "react-hooks": reactHooks },
    rules: {
      ...reactHooks.configs.recommended.rules,
    },
  },
  {
    files: ["src/components/**/*.{ts,tsx}", "src/lib/**/*.{ts,tsx}", "src/hooks/**/*.{ts,tsx}"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["@/features/*", "@/app", "@/app/*", "**/features/*", "**/app/*"],
              message: "Shared code does not import features or the app shell.",
            },
          ],
        },
      ],
    },
  },
  ...featureRules,
);
