const COMMON = new Set(['password1234', 'password12345', '123456789012', 'qwertyuiop12', 'letmein12345', 'welcome12345', 'iloveyou1234', 'passw0rd1234', 'correcthorsebatterystaple', 'changeme1234']);

/** Why a new password is refused, or undefined when it is acceptable. */
export function passwordProblem(password: string, identity: string): string | undefined {
  if (password.length < 12) return 'Use at least 12 characters.';
  if (password.length > 200) return 'Use at most 200 characters.';
  const lower = password.toLowerCase();
  if (COMMON.has(lower.replace(/\s+/g, ''))) return 'This password is too common.';
  const local = identity.split('@')[0]?.replace(/^\+/, '') ?? '';
  if (local.length >= 4 && lower.includes(local)) return 'Do not use your address or phone number in the password.';
  const classes = [/[a-z]/, /[A-Z]/, /\d/, /[^A-Za-z0-9]/].filter((re) => re.test(password)).length;
  if (password.length < 16 && classes < 3) return 'Mix upper and lower case letters, digits and symbols, or use 16 characters or more.';
  if (/^(.)\1+$/.test(password)) return 'This password is too simple.';
  return undefined;
}
