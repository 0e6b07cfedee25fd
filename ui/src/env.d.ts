/// <reference types="vite/client" />

interface Window {
  /** The trace request index.html starts on a trace page, before the bundle runs. */
  __outriderEarlyTrace?: { id: string; response: Promise<Response> };
}
