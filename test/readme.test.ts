// README: every ts and js block runs as pasted against the built package, and prints what the README shows
// (its `// → ` comments, or the ```text block right after it). The blocks are read from README.md itself.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { blocks, examples, root, type Example } from './support/readme.js';

/** Examples another test runs, because they need more than Node. */
const ELSEWHERE: Record<string, string> = {
  '### v86': 'test/v86.readme.test.ts boots the guests it needs',
};

/** Examples that print without showing the output, and why that is right. */
const UNSHOWN: Record<string, string> = {
  '## Many guests, stable MACs': 'its comments say what it prints in words; test/readme.manager.test.ts checks them',
  '### QEMU, passt, vde_plug and WebSocket relays: `macslot switch`': 'a server: it logs what its peers and uplink do',
};

/** Programs an example needs beyond Node: it skips locally when one is missing, and fails under CI=true. */
const NEEDS: readonly { pattern: RegExp; program: string }[] = [{ pattern: /kind: 'passt'|spawnPasst/, program: 'passt' }];

/**
 * A server example runs until Ctrl-C: once it prints a line that says so, the test sends SIGINT, and it must then stop
 * by itself, cleanly.
 */
const SERVER = /process\.once\('SIGINT'/;
const READY = /Ctrl-C/;

function missing(e: Example): string[] {
  const code = e.files.map((f) => f.code).join('\n');
  return NEEDS.filter((n) => n.pattern.test(code) && spawnSync('sh', ['-c', `command -v ${n.program}`]).status !== 0).map((n) => n.program);
}

/** Browser pages: test/browser.bundle.test.ts bundles and runs them in Chromium. */
const BROWSER = /^\/\/ (?:page|vite\.config|build)\.m?[jt]s$/;

// Generous: a machine twice as slow as a busy CI runner still finishes well inside it.
const RUN_TIMEOUT_MS = 60_000;

function label(e: Example): string {
  return `${e.heading} (README line ${e.line}: ${e.files.map((f) => f.name).join(' + ')})`;
}

interface Run {
  status: number | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/**
 * Runs an example in a fresh folder inside the project, so `macslot` resolves to this package as a user's install
 * would. It runs in a process group of its own, so a deadline kills whatever it started, too.
 */
async function runExample(e: Example): Promise<Run> {
  const dir = mkdtempSync(join(root, '.readme-'));
  try {
    for (const f of e.files) writeFileSync(join(dir, f.name), f.code);
    const entry = e.files[0]!.name;
    const args = entry.endsWith('.ts') || entry.endsWith('.mts') ? ['--import', 'tsx', entry] : [entry];
    const child = spawn(process.execPath, args, { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const run: Run = { status: null, timedOut: false, stdout: '', stderr: '' };
    const server = e.files.some((f) => SERVER.test(f.code));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      const before = run.stdout;
      run.stdout += d;
      // Ctrl-C goes to the example alone; the programs it started are its to stop.
      if (server && !READY.test(before) && READY.test(run.stdout)) child.kill('SIGINT');
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (run.stderr += d));
    const killGroup = (): void => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // The group is already gone.
      }
    };
    const timer = setTimeout(() => {
      run.timedOut = true;
      killGroup();
    }, RUN_TIMEOUT_MS);
    try {
      run.status = await new Promise<number | null>((resolve, reject) => {
        child.once('error', reject);
        child.once('close', (code) => resolve(code));
      });
    } finally {
      clearTimeout(timer);
      // Whatever the example left running (it must leave nothing) ends with it.
      killGroup();
    }
    return run;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const all = examples();
const runnable = all.filter((e) => ELSEWHERE[e.heading] === undefined && !BROWSER.test(`// ${e.files[0]!.name}`));

describe('README', () => {
  it('has the examples this test expects to find', () => {
    expect(existsSync(join(root, 'dist/index.js')), 'run npm run build first').toBe(true);
    // The opening example, the tour, MAC identifiers, the data plane, its workers and the MAC manager at least.
    expect(runnable.length).toBeGreaterThanOrEqual(6);
    // Every block is tagged, so none escapes this test by having no language.
    expect(
      blocks()
        .filter((b) => b.lang === '')
        .map((b) => b.line),
    ).toEqual([]);
    // The first code a reader sees installs the package, and the first example follows it.
    const first = blocks().slice(0, 2);
    expect(first[0]?.code.trim()).toBe('npm i macslot');
    expect(first[1]?.lang).toBe('ts');
  });

  it('shows what every example prints, next to it', () => {
    const prints = runnable.filter((e) => e.expected === undefined && e.files.some((f) => /console\.log\(/.test(f.code)));
    expect(prints.filter((e) => UNSHOWN[e.heading] === undefined).map(label)).toEqual([]);
  });

  it('states the Node versions the package declares and CI tests', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } };
    const stated = /Supported: Node (\d+\.\d+) and later, tested on Node ([\d, and]+)\./.exec(readme);
    expect(stated, 'README says "Supported: Node X.Y and later, tested on Node …."').not.toBeNull();
    expect(pkg.engines.node).toBe(`>=${stated![1]}`);
    // The versions the README names as tested: the oldest supported one runs the main pass of .ci/run, .ci/run adds the
    // others, and this run is one of them.
    const tested = stated![2]!.split(/, | and /).map(Number);
    const oldest = Number(stated![1]!.split('.')[0]);
    expect(tested[0]).toBe(oldest);
    expect(tested).toContain(Number(process.versions.node.split('.')[0]));
    const ci = readFileSync(join(root, '.ci/run'), 'utf8');
    for (const major of tested.slice(1)) expect(ci, `.ci/run runs Node ${major}`).toMatch(new RegExp(`\\b${major}\\b`));
  });

  it('every ts block type-checks in a strict Node project against the built declarations', () => {
    const ts = blocks().filter((b) => b.lang === 'ts');
    const dir = mkdtempSync(join(root, '.readme-types-'));
    try {
      const files = ts.map((b, i) => {
        const name = b.file ?? `line-${b.line}-${i}.ts`;
        writeFileSync(join(dir, name), b.code);
        return name;
      });
      const compilerOptions = {
        target: 'es2022',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        lib: ['es2022'],
        types: ['node'],
        strict: true,
        noEmit: true,
        skipLibCheck: true,
      };
      // skipLibCheck: v86's own declarations need the DOM library; the package test checks macslot's without it.
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files }));
      const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8' });
      // Errors name the README line the block starts on, so the fix is easy to find.
      expect(tsc.stdout.replace(/line-(\d+)-\d+\.ts/g, 'README block at line $1'), tsc.stderr).toBe('');
      expect(tsc.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it.each(runnable.map((e) => [label(e), e] as const))(
    '%s runs as pasted',
    async (_, e) => {
      const absent = missing(e);
      if (absent.length > 0 && process.env.CI === 'true') throw new Error(`CI=true, but ${absent.join(', ')} is not installed`);
      if (absent.length > 0) return void console.warn(`skipped: ${absent.join(', ')} is not installed`);
      const run = await runExample(e);
      const report = `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
      expect(run.timedOut, `killed after ${RUN_TIMEOUT_MS} ms: the example must end by itself\n${report}`).toBe(false);
      expect(run.status, report).toBe(0);
      if (e.expected !== undefined) expect(run.stdout.trimEnd().split('\n'), report).toEqual(e.expected);
    },
    RUN_TIMEOUT_MS + 10_000,
  );
});
