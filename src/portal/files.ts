// Moved to src/common (shared with the archive); kept here for the portal's imports.
export { writeFileDurably } from '../common/durable-file.js';
