#!/usr/bin/env node
/**
 * The `postern` command. libuv's thread pool runs every fsync, and its default of 4
 * threads caps how many transactions can be made durable at once. Its size is read when
 * the pool first starts; an ES module entry would start it while loading, so this entry
 * is CommonJS (loaded synchronously) and sets the size before importing the program.
 */
process.env.UV_THREADPOOL_SIZE ??= '16';
void import('./program.js').then(({ runCli }) => runCli(process.argv));
