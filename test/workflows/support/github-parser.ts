import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from '../../support/runners';

/** A `${{ }}` expression's context accesses, e.g. `steps.train.outputs.model-uri` → ['steps', 'train', 'outputs', 'model-uri']. */
export type AccessPath = string[];

export interface GithubParser {
  /** Errors of GitHub's workflow parser and converter (schema, expressions, allowed contexts, job graph). */
  validate(name: string, content: string): Promise<string[]>;
  /** Every literal context access path in one expression (without `${{ }}`); throws on a syntax error. */
  accessPaths(expression: string): AccessPath[];
}

// `@actions/workflow-parser` and `@actions/expressions` are ESM and import JSON without import attributes, which
// only bundlers accept, so they are bundled once with esbuild into a CommonJS file (as test/support/action-schema.ts
// does for action.yml). The AST walk lives in the bundle because it needs the ESM classes for `instanceof`.
const SOURCE = `
import { parseWorkflow, convertWorkflowTemplate, NoOperationTraceWriter } from '@actions/workflow-parser';
import { Lexer, Parser } from '@actions/expressions';
import { ContextAccess, IndexAccess, Literal, Unary, Binary, Logical, Grouping, FunctionCall } from '@actions/expressions/ast';

export async function validate(name, content) {
  const result = parseWorkflow({ name, content }, new NoOperationTraceWriter());
  const errors = result.context.errors.getErrors().map((e) => e.message);
  if (errors.length > 0 || !result.value) return errors;
  const template = await convertWorkflowTemplate(result.context, result.value);
  return (template.errors ?? []).map((e) => e.Message);
}

const CONTEXTS = ['github', 'env', 'vars', 'job', 'jobs', 'steps', 'runner', 'secrets', 'strategy', 'matrix', 'needs', 'inputs'];
// Functions the workflow schema adds to the built-in ones (contains, fromJSON, …) in job and step fields.
const FUNCTIONS = [
  { name: 'always', minArgs: 0, maxArgs: 0 },
  { name: 'success', minArgs: 0, maxArgs: 0 },
  { name: 'failure', minArgs: 0, maxArgs: 0 },
  { name: 'cancelled', minArgs: 0, maxArgs: 0 },
  { name: 'hashFiles', minArgs: 1, maxArgs: 255 },
];

export function accessPaths(expression) {
  const lexed = new Lexer(expression).lex();
  const tree = new Parser(lexed.tokens, CONTEXTS, FUNCTIONS).parse();
  const paths = [];
  const chain = (e) => {
    if (e instanceof ContextAccess) return [e.name.lexeme];
    if (e instanceof IndexAccess) {
      const head = chain(e.expr);
      const key = e.index instanceof Literal ? e.index.literal.coerceString() : e.index instanceof ContextAccess ? e.index.name.lexeme : undefined;
      return head && key !== undefined ? [...head, key] : undefined;
    }
    return undefined;
  };
  const walk = (e) => {
    if (e instanceof ContextAccess || e instanceof IndexAccess) {
      const p = chain(e);
      if (p) paths.push(p);
      if (e instanceof IndexAccess && !(e.index instanceof Literal) && !(e.index instanceof ContextAccess)) walk(e.index);
      if (!p && e instanceof IndexAccess) walk(e.expr);
    } else if (e instanceof Unary) walk(e.expr);
    else if (e instanceof Binary) { walk(e.left); walk(e.right); }
    else if (e instanceof Logical) e.args.forEach(walk);
    else if (e instanceof Grouping) walk(e.group);
    else if (e instanceof FunctionCall) e.args.forEach(walk);
  };
  walk(tree);
  return paths;
}
`;

let loaded: GithubParser | undefined;

export function loadGithubParser(): GithubParser {
  if (loaded) return loaded;
  const out = path.join(ROOT, '.mlship', 'workflow-parser.cjs');
  const esbuild = require('esbuild') as typeof import('esbuild');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  // Parallel jest workers may build at once: each writes its own file and renames it into place.
  const temp = `${out}.${process.pid}.tmp`;
  esbuild.buildSync({
    stdin: { contents: SOURCE, resolveDir: ROOT, loader: 'js' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    outfile: temp,
    logLevel: 'silent',
  });
  fs.renameSync(temp, out);
  loaded = require(out) as GithubParser;
  return loaded;
}
