/**
 * A form that did not arrive as the portal's forms send it: a field twice (formbody makes
 * that an array), or a body that is not fields at all (JSON). Answered 400 with a page by
 * the app's error handler (failure.ts), before any of the form is used.
 */
export class MalformedForm extends Error {
  readonly statusCode = 400;
  constructor() {
    super('portal: a form field is not a single string');
  }
}

/** A request's form fields, each one string; throws MalformedForm for anything else. */
export function formFields(body: unknown): Record<string, string | undefined> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body) || !Object.values(body).every((v) => typeof v === 'string')) throw new MalformedForm();
  return body as Record<string, string>;
}
