// The dashboard's build. Run from the repository root (`npx vite build --config
// dashboard/vite.config.ts`): `root` is resolved against the working directory, which keeps this
// file free of Node APIs so it type-checks with the browser's lib. npm start builds it through
// local/dashboard.ts; a deployment sets VITE_SUPABASE_URL and VITE_SUPABASE_ANON_KEY instead.
import { defineConfig } from 'vite';

export default defineConfig({
  root: 'dashboard',
  // Only VITE_* variables from the environment reach the bundle; no .env files are read.
  envDir: false,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
  },
});
