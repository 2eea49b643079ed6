// ESLint: type-aware rules that catch what the compiler cannot (a promise nobody awaits, a promise
// passed where a callback's result is ignored), on top of the recommended sets. Run by `npm test`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.local/**', 'hack/gitops-check/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // Its autofix deletes xstate's `types: {} as {...}` (the documented way to type a machine) and the
      // `as never` of test doubles, breaking the build; tsc already rejects casts that matter.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // Errors and abort reasons are `unknown`; turning them into text for a message is deliberate.
      '@typescript-eslint/no-base-to-string': 'off',
      // A variable a closure reads before its one assignment (an abort handle set after the timer
      // that may use it) cannot be const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Tests: fakes implement async interfaces without awaiting, and tests read untyped JSON (kubectl,
    // Docker, Prometheus) and check it with assertions, which are the type check there.
    files: ['test/**'],
    rules: {
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
);
