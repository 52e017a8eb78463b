"""Network configuration rendered per session: hostapd, wpa_psk, dnsmasq, nftables, and their static checks."""
