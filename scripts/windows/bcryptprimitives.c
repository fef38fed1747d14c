/*
 * A stand-in for Windows' bcryptprimitives.dll, which Wine 8 lacks: Bun's Windows runtime imports
 * one function from it, ProcessPrng (Windows 10+), to seed its random numbers. Wine has
 * BCryptGenRandom, so that is what this does. Built by scripts/test-windows.sh with mingw-w64 and
 * placed in the throwaway Wine prefix's system32; never shipped.
 */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
    if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG))) return FALSE;
    data += n;
    len -= n;
  }
  return TRUE;
}
