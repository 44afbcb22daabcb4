#!/bin/sh
# packaging/deb-version.sh GIT_DESCRIBE - the Debian version of a build.
# packaging/deb-version.sh --arch GOARCH - Debian's name of a Go architecture.
#
#   v1.2.3                 -> 1.2.3
#   v1.2.3-4-gabc1234      -> 1.2.3+git4.abc1234   (sorts after 1.2.3)
#   v1.2.3-rc1             -> 1.2.3~rc1            (sorts before 1.2.3)
#   abc1234 (no tag yet)   -> 0.0.0+git<commit time>.abc1234
#   any of them + -dirty   -> ...+dirty
# A Debian version must start with a digit and may hold only
# [A-Za-z0-9.+~-]; the commit time keeps untagged builds in order.
set -eu
if [ "${1:-}" = --arch ]; then
	case "${2:?GOARCH}" in
	386) echo i386 ;;
	arm) echo armhf ;;
	ppc64le) echo ppc64el ;;
	mips64le) echo mips64el ;;
	mipsle) echo mipsel ;;
	*) echo "$2" ;;
	esac
	exit 0
fi
v=${1:?usage: deb-version.sh GIT_DESCRIBE}
dirty=
case $v in *-dirty) dirty=+dirty v=${v%-dirty} ;; esac
# No tag: `git describe --always` gives the abbreviated commit id, which
# may start with a digit too.
untagged=
if printf '%s\n' "$v" | grep -Eqx '[0-9a-f]{7,40}' && ! git show-ref --verify --quiet "refs/tags/$v" 2>/dev/null; then
	untagged=U
fi
v=${v#v}
case $untagged$v in
U*) ;; # untagged: below
[0-9]*)
	# TAG[-N-gSHA]; a tag's own pre-release part (-rc1) becomes ~rc1.
	if printf '%s\n' "$v" | grep -Eq -- '-[0-9]+-g[0-9a-f]+$'; then
		sha=${v##*-g}
		rest=${v%-g*}
		n=${rest##*-}
		tag=${rest%-*}
		v="$(printf '%s' "$tag" | tr - '~')+git$n.$sha"
	else
		v=$(printf '%s' "$v" | tr - '~')
	fi
	;;
*) untagged=U ;; # no tag and no commit id ("dev"): below
esac
if [ -n "$untagged" ]; then
	ts=$(git log -1 --format=%cd --date=format:%Y%m%d%H%M%S 2>/dev/null || echo 0)
	v="0.0.0+git$ts.$(printf '%s' "$v" | tr -c 'A-Za-z0-9.\n' .)"
fi
printf '%s%s\n' "$v" "$dirty"
