/**
 * What table-driven optimizer tests need per registry entry, so a new entry is covered by every
 * such test (registry problems, tiny LM, resume) without editing them.
 */
import type { RegistryEntry } from '../../src/optim/registry.js';

/**
 * Options that make a run of a few steps exercise what a long run does. Refreshing every 3
 * steps puts refreshes on both sides of every split in the resume tests and several inside the
 * short problems; SOAP and Shampoo default to 10.
 */
const SHORT_RUN: Record<string, Record<string, unknown>> = {
  soap: { precondition_frequency: 3 },
  shampoo: { precondition_frequency: 3 },
};

/**
 * `SHORT_RUN` for this entry; an entry not listed there gets `precondition_frequency: 3` if
 * its schema has that option, else nothing.
 */
export function shortRunOptions(entry: RegistryEntry): Record<string, unknown> {
  return SHORT_RUN[entry.name] ?? ('precondition_frequency' in entry.schema.shape ? { precondition_frequency: 3 } : {});
}
