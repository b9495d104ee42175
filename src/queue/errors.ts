/**
 * The queue refused an operation before changing anything (a Redis script's error reply,
 * or the file spool's own check), unlike a failure whose outcome is unknown (a lost
 * connection, a timeout, a disk error part-way).
 */
export class QueueRefusal extends Error {
  override readonly name: string = 'QueueRefusal';
}

/**
 * The lease presented is not the message's current one: it expired and the message was
 * taken again (by this instance or another), or it was settled already, or another
 * holds the message and none was presented.
 */
export class LeaseLostError extends QueueRefusal {
  override readonly name = 'LeaseLostError';
}

/** No committed message has that id. */
export class NoMessageError extends QueueRefusal {
  override readonly name = 'NoMessageError';
}
