/*
 * A stand-in bcryptprimitives.dll for Wine 8.0, which lacks it.
 *
 * Rust >= 1.78 binaries for Windows import ProcessPrng from bcryptprimitives.dll (the
 * standard library's random source, used by HashMap's RandomState). Wine 8.0 ships no
 * such DLL, so every test binary fails to load (exit status 53). This DLL exports
 * ProcessPrng and fills the buffer with RtlGenRandom (SystemFunction036 in advapi32),
 * which Wine implements. It is only ever copied into the throwaway Wine prefix that
 * .ci/windows.sh creates; nothing ships it.
 *
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll bcryptprimitives.c \
 *          bcryptprimitives.def -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* RtlGenRandom takes a ULONG length: feed it in chunks. */
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)inst;
    (void)reason;
    (void)reserved;
    return TRUE;
}
