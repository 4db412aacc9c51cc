// Builds the dashboard served at /app into the two committed assets:
//   src/api/dashboard_assets/app.js   one ES2020 module, minified, no source map
//   src/api/dashboard_assets/app.css  the dashboard's CSS and uPlot's, minified
// and prints their raw and gzip sizes. Type-checks first (tsc --noEmit),
// against types generated from openapi/openapi.json into generated/.
//
//   node dashboard/build.mjs [--out DIR] [--skip-typecheck]
//
// The output depends only on the sources and the pinned packages: no
// absolute path, timestamp or source map goes in, so a rebuild is
// byte-for-byte the committed file (scripts/dashboard-build.sh --check).
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");
const args = process.argv.slice(2);
const outIndex = args.indexOf("--out");
const outDir = outIndex >= 0 ? resolve(args[outIndex + 1]) : join(root, "src/api/dashboard_assets");

// The API's types, from the committed contract, with the same pinned
// openapi-typescript as clients/typescript (types only: nothing of them is
// in the bundle).
try {
  mkdirSync(join(here, "generated"), { recursive: true });
  execFileSync(
    process.execPath,
    [join(here, "node_modules/openapi-typescript/bin/cli.js"), join(root, "openapi/openapi.json"), "-o", join(here, "generated/schema.ts")],
    // From dashboard/: the repository's redocly.yaml (for the lint) is not
    // this generator's configuration.
    { cwd: here, stdio: ["ignore", "ignore", "inherit"] },
  );
} catch {
  console.error("dashboard build: openapi-typescript could not read openapi/openapi.json");
  process.exit(1);
}

if (!args.includes("--skip-typecheck")) {
  const tsc = join(here, "node_modules/typescript/bin/tsc");
  try {
    execFileSync(process.execPath, [tsc, "--noEmit", "-p", join(here, "tsconfig.json")], { stdio: "inherit" });
  } catch {
    console.error("dashboard build: tsc found type errors");
    process.exit(1);
  }
}

mkdirSync(outDir, { recursive: true });
const common = {
  absWorkingDir: here,
  bundle: true,
  minify: true,
  sourcemap: false,
  // Licence comments of the bundled packages (MIT) are kept, at the end.
  legalComments: "eof",
  charset: "utf8",
  logLevel: "warning",
};
await esbuild.build({
  ...common,
  entryPoints: ["src/main.tsx"],
  outfile: join(outDir, "app.js"),
  format: "esm",
  target: "es2020",
  platform: "browser",
  jsx: "automatic",
  jsxImportSource: "preact",
  // The CSP forbids eval; esbuild emits none, and no dev-only code is wanted.
  define: { "process.env.NODE_ENV": '"production"' },
});
await esbuild.build({
  ...common,
  entryPoints: ["src/app.css"],
  outfile: join(outDir, "app.css"),
  target: ["chrome100", "firefox100", "safari15"],
});

let total = 0;
for (const name of ["app.js", "app.css"]) {
  const bytes = readFileSync(join(outDir, name));
  const gz = gzipSync(bytes, { level: 9 }).length;
  total += gz;
  const path = join(outDir, name);
  const shown = path.startsWith(`${root}/`) ? relative(root, path) : path;
  console.log(`${shown}: ${bytes.length} bytes, ${gz} gzip`);
}
console.log(`dashboard build: ${total} bytes gzip in total`);
