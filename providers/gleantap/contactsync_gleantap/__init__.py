from contactsync import Provider as _P
class Provider(_P[object]):
    name = 'gleantap'
