/**
 * core: the pieces every other module may use, importing nothing of ours.
 * errors (coded, classified), Clock/Random (injected time), durations, Deferred.
 */
export * from './errors.js';
export * from './clock.js';
export * from './duration.js';
export * from './deferred.js';
export * from './ids.js';
export * from './suggest.js';
export * from './re2.js';
export * from './listen.js';
export * from './make-dirs.js';
