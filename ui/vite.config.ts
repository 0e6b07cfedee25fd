// Vite: `npm run dev` serves the UI with hot reload and forwards the API to a
// running collector (OUTRIDER_COLLECTOR, default 127.0.0.1:9411); `npm run
// build` writes the bundle that CMake embeds into the binary.
import { defineConfig } from "vitest/config";

const collector = process.env.OUTRIDER_COLLECTOR ?? "http://127.0.0.1:9411";

export default defineConfig({
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: { "/api": collector },
  },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
  },
});
