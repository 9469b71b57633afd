// The forms' own checks, before the API's (which has the last word): the
// same words on every form.
export const MIN_PASSWORD = 10;

export function validateEmail(email: string): string | undefined {
  if (!email.trim()) return "Enter your email address.";
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email.trim())) return "Enter an email address like name@example.com.";
  return undefined;
}

export function validatePassword(password: string): string | undefined {
  if (!password) return "Enter a password.";
  if (password.length < MIN_PASSWORD) return `Use at least ${MIN_PASSWORD} characters.`;
  return undefined;
}

export const MAX_NAME = 255;

export function validateName(name: string): string | undefined {
  if (!name.trim()) return "Enter your name.";
  if ([...name.trim()].length > MAX_NAME) return `Use at most ${MAX_NAME} characters.`;
  return undefined;
}
