/**
 * Each proxy's last complete plan, certificate and key included, kept in the agent's data dir
 * (directory 0700, files 0600), so an agent restarted while every server is down serves what
 * it last knew (fail static) until the certificate expires, and then fails closed.
 */
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProxyPlan } from '../../proxy/index.js';
import type { SidecarCapture } from '../capture/types.js';
import { makeDirs } from '../../core/make-dirs.js';

interface Saved {
  /** The sidecar definition the plan was made for; a changed definition ignores it. */
  specKey: string;
  plan: ProxyPlan;
  /** A transparent sidecar's capture, so its listener ports survive a restart. */
  capture?: SidecarCapture;
}

export interface PlanStore {
  load(id: string, specKey: string): { plan: ProxyPlan; capture?: SidecarCapture } | undefined;
  save(id: string, specKey: string, plan: ProxyPlan, capture?: SidecarCapture): void;
  remove(id: string): void;
}

export function filePlanStore(dir: string, warn: (o: object, m: string) => void): PlanStore {
  const fileOf = (id: string): string => join(dir, `${encodeURIComponent(id)}.json`);
  return {
    load(id, specKey) {
      let text: string;
      try {
        text = readFileSync(fileOf(id), 'utf8');
      } catch {
        return undefined;
      }
      try {
        const saved = JSON.parse(text) as Saved;
        if (saved.specKey !== specKey) return undefined;
        return { plan: saved.plan, ...(saved.capture ? { capture: saved.capture } : {}) };
      } catch (err) {
        warn({ sidecar: id, err: String(err) }, 'ignoring an unreadable saved proxy plan');
        return undefined;
      }
    },
    save(id, specKey, plan, capture) {
      try {
        makeDirs(dir, 0o700);
        const path = fileOf(id);
        writeFileSync(
          `${path}.tmp`,
          JSON.stringify({ specKey, plan, ...(capture ? { capture } : {}) } satisfies Saved),
          {
            mode: 0o600,
          },
        );
        renameSync(`${path}.tmp`, path);
      } catch (err) {
        warn({ sidecar: id, err: String(err) }, 'cannot save the proxy plan');
      }
    },
    remove(id) {
      try {
        unlinkSync(fileOf(id));
      } catch {
        // Nothing saved: nothing to remove.
      }
    },
  };
}
