<#
.SYNOPSIS
  Installs edgeport on Windows from a release: a directory that `bun run release` wrote
  (dist\release) or the base URL it was uploaded to. Picks the build for this machine, checks it
  against SHA256SUMS (refusing on a mismatch) and installs it as PREFIX\edgeport.exe.

.EXAMPLE
  powershell -ExecutionPolicy Bypass -File install.ps1 -Release \\server\share\edgeport\v0.1.0
.EXAMPLE
  & ([scriptblock]::Create((irm https://example.org/edgeport/install.ps1))) -Release https://example.org/edgeport/v0.1.0

.NOTES
  PREFIX defaults to %LOCALAPPDATA%\Programs\edgeport. Only x64 builds exist for Windows; the
  -baseline build is picked on a CPU without AVX2. Not run in edgeport's CI (no Windows there):
  scripts/install.sh is the tested twin of this script.
#>
param(
  [Parameter(Mandatory = $true, Position = 0)][string]$Release,
  [string]$Prefix = (Join-Path $env:LOCALAPPDATA 'Programs\edgeport'),
  [string]$Target = '',
  [switch]$DryRun
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3

function Fail([string]$msg) { Write-Error "install.ps1: $msg" -ErrorAction Continue; exit 1 }

if (-not $Target) {
  $arch = $env:PROCESSOR_ARCHITECTURE
  if ($env:PROCESSOR_ARCHITEW6432) { $arch = $env:PROCESSOR_ARCHITEW6432 }
  # ARM64 Windows runs the x64 build under emulation; there is no native arm64 build of Bun for Windows
  if ($arch -notin @('AMD64', 'ARM64')) { Fail "no edgeport build for the CPU $arch" }
  # IsProcessorFeaturePresent(PF_AVX2_INSTRUCTIONS_AVAILABLE = 40)
  Add-Type -Namespace Edgeport -Name Cpu -MemberDefinition '[DllImport("kernel32.dll")] public static extern bool IsProcessorFeaturePresent(uint f);'
  $Target = if ([Edgeport.Cpu]::IsProcessorFeaturePresent(40)) { 'windows-x64' } else { 'windows-x64-baseline' }
}
$file = "edgeport-$Target.exe"

if ($DryRun) { Write-Output "would install $file from $Release to $(Join-Path $Prefix 'edgeport.exe')"; exit 0 }

$remote = $Release -match '^https?://'
function Fetch([string]$name, [string]$dest) {
  if ($remote) {
    $url = $Release.TrimEnd('/') + '/' + $name
    try { Invoke-WebRequest -UseBasicParsing -Uri $url -OutFile $dest } catch { Fail "could not download ${url}: $($_.Exception.Message)" }
  } else {
    $p = Join-Path $Release $name
    if (-not (Test-Path -LiteralPath $p -PathType Leaf)) { Fail "$Release has no $name" }
    Copy-Item -LiteralPath $p -Destination $dest
  }
}

$tmp = Join-Path ([IO.Path]::GetTempPath()) ("edgeport-install-" + [guid]::NewGuid())
New-Item -ItemType Directory -Path $tmp | Out-Null
try {
  Fetch 'SHA256SUMS' (Join-Path $tmp 'SHA256SUMS')
  $want = $null
  foreach ($line in Get-Content -LiteralPath (Join-Path $tmp 'SHA256SUMS')) {
    $parts = $line -split '\s+', 2
    if ($parts.Count -eq 2 -and $parts[1].TrimStart('*') -eq $file) { $want = $parts[0].ToLowerInvariant() }
  }
  if (-not $want) { Fail "this release has no $file in SHA256SUMS" }
  $download = Join-Path $tmp $file
  Fetch $file $download
  $got = (Get-FileHash -Algorithm SHA256 -LiteralPath $download).Hash.ToLowerInvariant()
  if ($got -ne $want) { Fail "checksum mismatch for ${file}: SHA256SUMS says $want, the downloaded file is $got; not installing" }

  New-Item -ItemType Directory -Force -Path $Prefix | Out-Null
  $new = Join-Path $Prefix 'edgeport.new.exe'
  Copy-Item -LiteralPath $download -Destination $new -Force
  $version = & $new version 2>&1 | Select-Object -First 1
  if ($LASTEXITCODE -ne 0) { Remove-Item -LiteralPath $new -Force; Fail "the $file build does not run here, not installing it: $version" }
  $dest = Join-Path $Prefix 'edgeport.exe'
  # a running edgeport.exe cannot be overwritten, but it can be renamed out of the way
  if (Test-Path -LiteralPath $dest) { Move-Item -LiteralPath $dest -Destination (Join-Path $Prefix 'edgeport.old.exe') -Force }
  Move-Item -LiteralPath $new -Destination $dest -Force
  Remove-Item -LiteralPath (Join-Path $Prefix 'edgeport.old.exe') -Force -ErrorAction SilentlyContinue

  Write-Output "installed $version as $dest (sha256 $got)"
  $userPath = [Environment]::GetEnvironmentVariable('Path', 'User')
  if (($userPath -split ';') -notcontains $Prefix) {
    [Environment]::SetEnvironmentVariable('Path', ($userPath.TrimEnd(';') + ';' + $Prefix).TrimStart(';'), 'User')
    Write-Output "added $Prefix to your user PATH (new terminals see it)"
  }
  Write-Output "next: edgeport service install --dry-run   (see docs\setups\ for WSL2 or Docker Desktop)"
} finally {
  Remove-Item -LiteralPath $tmp -Recurse -Force -ErrorAction SilentlyContinue
}
