/**
 * Preloaded (node --require) into a CLI process that must do nothing but print, such as
 * `holdback <command> --help`: every call that would write or delete a file, start a process,
 * open a connection, listen on a port or fetch a URL is refused. Each one is reported on stderr as
 * a line starting with `SIDE EFFECT:` (written straight to fd 2, so that nothing can hide it) and
 * then throws, so that it does not happen either.
 */
/* global require */
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS preload */
'use strict';
const fs = require('node:fs');
const childProcess = require('node:child_process');
const net = require('node:net');
const dgram = require('node:dgram');

function show(x) {
  try {
    return typeof x === 'object' ? JSON.stringify(x) : String(x);
  } catch {
    return String(x);
  }
}

function refuse(what) {
  fs.writeSync(2, `SIDE EFFECT: ${what}\n`);
  throw new Error(`refused side effect: ${what}`);
}

/** Open flags that write: w, a, x or + (string), or any of O_WRONLY, O_RDWR, O_CREAT, O_APPEND. */
function writes(flags) {
  if (flags === undefined || flags === null) return false;
  if (typeof flags === 'number') {
    const c = fs.constants;
    return (flags & (c.O_WRONLY | c.O_RDWR | c.O_CREAT | c.O_APPEND | c.O_TRUNC)) !== 0;
  }
  return /[wax+]/.test(String(flags));
}

const WRITERS = [
  'writeFile',
  'appendFile',
  'mkdir',
  'mkdtemp',
  'rm',
  'rmdir',
  'unlink',
  'rename',
  'copyFile',
  'cp',
  'symlink',
  'link',
  'truncate',
  'chmod',
  'chown',
  'utimes',
];

function guard(target, name, label) {
  if (typeof target[name] !== 'function') return;
  target[name] = function () {
    refuse(`${label}(${String(arguments[0])})`);
  };
}

for (const name of WRITERS) {
  guard(fs, name, `fs.${name}`);
  guard(fs, `${name}Sync`, `fs.${name}Sync`);
  guard(fs.promises, name, `fs.promises.${name}`);
}
for (const [target, name, label, flagsAt] of [
  [fs, 'open', 'fs.open', 1],
  [fs, 'openSync', 'fs.openSync', 1],
  [fs.promises, 'open', 'fs.promises.open', 1],
]) {
  const real = target[name];
  target[name] = function () {
    if (writes(arguments[flagsAt]))
      refuse(`${label}(${String(arguments[0])}, ${String(arguments[flagsAt])})`);
    return real.apply(this, arguments);
  };
}
guard(fs, 'createWriteStream', 'fs.createWriteStream');

for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) {
  guard(childProcess, name, `child_process.${name}`);
}

net.Socket.prototype.connect = function () {
  refuse(`net connect ${show(arguments[0])}`);
};
net.Server.prototype.listen = function () {
  refuse(`listen ${show(arguments[0])}`);
};
guard(dgram, 'createSocket', 'dgram.createSocket');
globalThis.fetch = function (url) {
  refuse(`fetch ${String(url)}`);
};
