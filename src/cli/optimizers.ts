/**
 * `soap-train optimizers`: every registry entry with its options, defaults and descriptions,
 * read from the zod schemas themselves so the listing cannot drift from what configs accept.
 */
import { Command } from 'commander';
import { z } from 'zod';
import { OPTIMIZERS } from '../optim/registry.js';

export interface OptionDoc {
  name: string;
  type: string;
  default: unknown;
  description: string;
}

interface JsonSchemaProperty {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  description?: string;
  items?: unknown;
  prefixItems?: unknown[];
}

/** The options of one registry entry, from its schema (`type` itself excluded). */
export function describeOptions(schema: z.ZodObject): OptionDoc[] {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, JsonSchemaProperty> };
  return Object.entries(json.properties ?? {})
    .filter(([name]) => name !== 'type')
    .map(([name, p]) => ({
      name,
      type: p.enum ? p.enum.map(String).join(' | ') : p.prefixItems ? `[${p.prefixItems.map(() => 'number').join(', ')}]` : String(p.type ?? 'value'),
      default: p.default,
      description: p.description ?? '',
    }));
}

export function optimizersCommand(): Command {
  return new Command('optimizers')
    .description('list the registered optimizers with their options, defaults and descriptions')
    .option('--json', 'print JSON instead of a table')
    .action((opts: { json?: boolean }) => {
      const list = OPTIMIZERS.map((e) => ({ name: e.name, summary: e.summary, options: describeOptions(e.schema) }));
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      for (const o of list) {
        process.stdout.write(`${o.name}: ${o.summary}\n`);
        for (const opt of o.options) {
          const dflt = opt.default === undefined ? '' : ` = ${JSON.stringify(opt.default)}`;
          process.stdout.write(`  ${`${opt.name}${dflt}`.padEnd(34)} ${opt.type.padEnd(16)} ${opt.description}\n`);
        }
        process.stdout.write('\n');
      }
    });
}
